// Scale section `ceilings` (issue 17 §5): the machine's own limits, printed first so every figure after them
// can be read against them. Each is one core's or one device's rate, measured here and now (the machine is shared).
//
//   disk       sequential read of a BENCH_CEILING_DISK_MIB (default 1024) MiB file of random bytes written to the
//              scratch directory (the disk the other sections pack from): `dd iflag=direct bs=1M`, so O_DIRECT and
//              never the page cache. The pack of a sparse image reads its data regions at this rate at best.
//   zstd       `zstd -b3` (one thread) of a 64 MiB sample of the machine's shared libraries (compressible, like a
//              disk's binaries): compression and decompression MB/s per core, and the ratio. The packer's workers
//              compress at level 3, one block each.
//   sha1       SHA-1 (block ids) and SHA-256 (the index digest, which the decoder computes over every byte) of the
//              same sample, 4 passes, in this process: MB/s per core (OpenSSL, as the packer and decoder use).
//
// No targets: these are what the targets are measured against.

import { createHash, randomFillSync } from 'node:crypto';
import { open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchError, envInt, MB, MiB, requireTools, runCommand, waitForQuiet } from '../lib.mjs';

export const title = "the machine's ceilings: disk sequential read (O_DIRECT), zstd -3 and SHA-1/SHA-256 per core";

const SAMPLE_BYTES = 64 * MiB;
const SAMPLE_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/bin'];
const HASH_PASSES = 4;
const WRITE_CHUNK = 16 * MiB;
const QUIET_WAIT_MS = 20_000;

export async function run(ctx) {
  const { table, results, scratch, signal } = ctx;
  await requireTools([
    ['dd', 'coreutils'],
    ['zstd', 'zstd'],
  ]);
  const out = {};
  results.ceilings = out;

  // --- Disk: O_DIRECT sequential read ---------------------------------------------------------------
  const mib = envInt('BENCH_CEILING_DISK_MIB', 1024);
  const file = join(scratch, 'ceiling-disk.bin');
  const fh = await open(file, 'w');
  try {
    const chunk = Buffer.allocUnsafeSlow(WRITE_CHUNK);
    for (let off = 0; off < mib * MiB; off += WRITE_CHUNK) {
      signal.throwIfAborted();
      randomFillSync(chunk);
      await fh.write(chunk, 0, Math.min(WRITE_CHUNK, mib * MiB - off), off);
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await waitForQuiet({ signal, log: ctx.log, maxWaitMs: QUIET_WAIT_MS });
  const dd = await runCommand('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'iflag=direct'], { signal });
  const m = /(\d+) bytes .*copied, ([\d.e+-]+) s/.exec(dd.stderr);
  if (!m || Number(m[1]) !== mib * MiB) throw new BenchError('DD', `dd read: ${dd.stderr.trim()}`);
  out.diskMBps = Number(m[1]) / MB / Number(m[2]);
  await rm(file, { force: true });
  table.info('ceiling.disk', `disk: sequential read, dd iflag=direct bs=1M of ${mib} MiB`, out.diskMBps, 'MB/s');

  // --- zstd and SHA on a compressible sample ----------------------------------------------------------
  const sample = await librarySample(SAMPLE_BYTES);
  const samplePath = join(scratch, 'ceiling-sample.bin');
  const sfh = await open(samplePath, 'w');
  await sfh.write(sample);
  await sfh.close();
  await waitForQuiet({ signal, log: ctx.log, maxWaitMs: QUIET_WAIT_MS });
  const z = await runCommand('zstd', ['-b3', '-i3', '-T1', samplePath], { signal });
  // zstd -b rewrites its line with carriage returns; the last one holds the final figures (MB = 10^6 B).
  const lines = [...(z.stdout + z.stderr).matchAll(/\(x([\d.]+)\),\s+([\d.]+) MB\/s,\s+([\d.]+) MB\/s/g)];
  const last = lines[lines.length - 1];
  if (!last) throw new BenchError('ZSTD', `cannot parse zstd -b output: ${(z.stdout + z.stderr).slice(-300)}`);
  out.zstd = { ratio: Number(last[1]), compressMBps: Number(last[2]), decompressMBps: Number(last[3]) };
  await rm(samplePath, { force: true });
  table.info(
    'ceiling.zstd.c',
    'zstd -3 compression, one core (zstd -b3 -T1, 64 MiB of libraries)',
    out.zstd.compressMBps,
    'MB/s',
  );
  table.info('ceiling.zstd.d', 'zstd decompression, one core (same sample)', out.zstd.decompressMBps, 'MB/s');
  table.info('ceiling.zstd.ratio', 'zstd -3 ratio on that sample', out.zstd.ratio, '');

  await waitForQuiet({ signal, log: ctx.log, maxWaitMs: QUIET_WAIT_MS });
  for (const algorithm of ['sha1', 'sha256']) {
    const t = performance.now();
    const h = createHash(algorithm);
    for (let i = 0; i < HASH_PASSES; i++) h.update(sample);
    h.digest();
    out[`${algorithm}MBps`] = (HASH_PASSES * sample.length) / MB / ((performance.now() - t) / 1000);
    table.info(
      `ceiling.${algorithm}`,
      `${algorithm === 'sha1' ? 'SHA-1' : 'SHA-256'}, one core (node:crypto)`,
      out[`${algorithm}MBps`],
      'MB/s',
    );
  }
}

/** `bytes` of the machine's shared libraries and programs, files in name order: compressible like a disk's binaries. */
async function librarySample(bytes) {
  const sample = Buffer.allocUnsafe(bytes);
  let fill = 0;
  for (const dir of SAMPLE_DIRS) {
    let names;
    try {
      names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (fill === bytes) return sample;
      const data = await readFile(join(dir, name)).catch(() => undefined);
      if (!data) continue;
      fill += data.copy(sample, fill, 0, Math.min(data.length, bytes - fill));
    }
  }
  if (fill < bytes) throw new BenchError('SAMPLE', `only ${fill} bytes of libraries found for the zstd/SHA sample`);
  return sample;
}
