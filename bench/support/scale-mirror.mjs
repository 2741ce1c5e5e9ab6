// Scale section `mirror` (issue 17 §4): a mirror holding 10,000 images.
//
//   store      BENCH_MIRROR_IMAGES (default 10,000) images of 4 blocks of 64 KiB: 3 blocks shared by all, 1 of
//              their own (stored raw), each with its index: ~10,000 block files and ~10,000 index files.
//   listing    `thfc-mirror serve` of the store: GET /index.json the first time (every index read and digested)
//              and again (facts cached by file identity).
//   sync       `thfc-mirror sync URL --store REPLICA`: the first pass copies everything; the second finds
//              nothing to do (each index is skipped by the listing's SHA-256).
//   gc         `thfc-pack gc STORE` (a dry run): every index read, every block file listed.
//
// No target: the issue asks that these "stay fast" and be measured; each row also gives the time per image.

import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureDir, envInt, freePort, requireBuilt, runCommand, startProcess, THFC_CLIS } from '../lib.mjs';

export const title = 'a mirror of 10,000 images: listing, sync (first and unchanged), gc';

const FORMAT_LIB = 'packages/format/dist/index.js';
const BLOCK = 64 * 1024;

export async function run(ctx) {
  const { table, results, scratch, signal } = ctx;
  const [pack, mirror, lib] = [THFC_CLIS.pack, THFC_CLIS.mirror, FORMAT_LIB].map((p) => resolve(ctx.repoRoot, p));
  await requireBuilt([pack, mirror, lib]);
  const { encodeIndex, blockPath } = await import(pathToFileURL(lib).href);
  const images = envInt('BENCH_MIRROR_IMAGES', 10_000);
  const out = { images };
  results.mirror = out;

  // --- The store ------------------------------------------------------------------------------------
  const store = await ensureDir(join(scratch, 'mirror-store'));
  const put = async (bytes) => {
    const id = createHash('sha1').update(bytes).digest('hex');
    const path = join(store, blockPath(id));
    await ensureDir(join(path, '..'));
    await writeFile(path, bytes);
    return { id, codec: 'none', storedSize: bytes.length };
  };
  const shared = [];
  for (let s = 0; s < 3; s++) shared.push(await put(Buffer.alloc(BLOCK, `shared ${s} `)));
  const t0 = performance.now();
  for (let i = 0; i < images; i++) {
    if (signal.aborted) return;
    const own = await put(Buffer.alloc(BLOCK, `image ${i} `));
    const name = `img-${String(i).padStart(5, '0')}`;
    const header = {
      version: 1,
      name,
      size: 4 * BLOCK,
      blockSize: BLOCK,
      hash: 'sha1',
      codec: 'none',
      created: '2026-12-06T00:00:00Z',
    };
    await writeFile(join(store, `${name}.idx`), encodeIndex(header, [...shared, own]));
  }
  ctx.log(`wrote ${images} images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // --- Listing --------------------------------------------------------------------------------------
  const port = await freePort();
  const server = startProcess(process.execPath, [mirror, 'serve', store, '--listen', `127.0.0.1:${port}`], {
    stdin: 'ignore',
  });
  try {
    await server.waitFor(/serving /, 20_000);
    const base = `http://127.0.0.1:${port}/`;
    for (const round of ['listingCold', 'listingWarm']) {
      const t = performance.now();
      const res = await fetch(`${base}index.json`, { signal });
      const body = await res.json();
      out[round] = { seconds: (performance.now() - t) / 1000, indexes: body.indexes.length };
    }
    // --- Sync -------------------------------------------------------------------------------------
    const replica = join(scratch, 'mirror-replica');
    for (const round of ['syncFirst', 'syncUnchanged']) {
      const r = await runCommand(process.execPath, [mirror, 'sync', base, '--store', replica, '--json'], {
        signal,
        timeoutMs: 1_800_000,
      });
      out[round] = { seconds: r.seconds };
    }
  } finally {
    await server.stop();
  }
  // --- gc -----------------------------------------------------------------------------------------
  const gc = await runCommand(process.execPath, [pack, 'gc', store, '--json'], { signal, timeoutMs: 600_000 });
  out.gc = { seconds: gc.seconds };

  const per = (s) => (s / images) * 1000;
  table.info(
    'mirror.listing.cold',
    `GET /index.json of ${images} images, first (ms per image)`,
    per(out.listingCold.seconds),
    'ms',
  );
  table.info('mirror.listing.warm', `GET /index.json again (ms per image)`, per(out.listingWarm.seconds), 'ms');
  table.info('mirror.sync.first', `thfc-mirror sync of ${images} images, first pass (s)`, out.syncFirst.seconds, 's');
  table.info('mirror.sync.unchanged', 'thfc-mirror sync again, nothing changed (s)', out.syncUnchanged.seconds, 's');
  table.info('mirror.gc', `thfc-pack gc (dry run) of the store (s)`, out.gc.seconds, 's');
}
