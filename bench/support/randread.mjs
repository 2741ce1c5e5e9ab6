#!/usr/bin/env node
// Fallback random reader for `bench mount` when fio is not installed: one process doing 4 KiB
// preads at random 4 KiB-aligned offsets of FILE, synchronously (QD1), like fio's psync engine.
// It uses buffered I/O (Node cannot guarantee the buffer alignment O_DIRECT needs), after
// posix_fadvise(DONTNEED) of the whole file by the caller, so repeats can hit the page cache.
//
//   node bench/support/randread.mjs FILE SIZE ios=N|seconds=T SEED
//
// Prints one JSON line: {"ios": n, "seconds": s, "iops": n/s}.

import { closeSync, openSync, readSync } from 'node:fs';

const [file, sizeArg, limitArg, seedArg] = process.argv.slice(2);
const size = Number(sizeArg);
const [kind, value] = (limitArg ?? '').split('=');
if (!file || !(size > 0) || !['ios', 'seconds'].includes(kind) || !(Number(value) > 0)) {
  process.stderr.write('usage: randread.mjs FILE SIZE ios=N|seconds=T [SEED]\n');
  process.exit(2);
}
let state = Number(seedArg ?? 1) >>> 0 || 1;
const rand = () => {
  // xorshift32: deterministic per seed
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
};
const pages = Math.floor(size / 4096);
const buf = Buffer.allocUnsafe(4096);
const fd = openSync(file, 'r');
const t0 = process.hrtime.bigint();
const deadline = kind === 'seconds' ? t0 + BigInt(Math.round(Number(value) * 1e9)) : undefined;
let ios = 0;
for (;;) {
  if (kind === 'ios' && ios >= Number(value)) break;
  if (deadline !== undefined && (ios & 63) === 0 && process.hrtime.bigint() >= deadline) break;
  const n = readSync(fd, buf, 0, 4096, Math.floor(rand() * pages) * 4096);
  if (n !== 4096) throw new Error(`short read: ${n}`);
  ios++;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
closeSync(fd);
process.stdout.write(`${JSON.stringify({ ios, seconds, iops: ios / seconds })}\n`);
