// Suite `scale` (issue 17): terabyte images, compact indexes, and the fleet side, each figure printed with the
// machine's own ceilings beside it (the disk's sequential read rate, zstd and SHA-1 rates).
//
// The suite is a list of sections, one file each: bench/support/scale-*.mjs, run in name order. A section
// exports `title` (one line) and `async function run(ctx)`, and fills ctx.table and ctx.results[its name]
// like any suite. A section that throws is reported as one error row and the next section still runs.
//
// Env: BENCH_SCALE_SECTIONS (comma list of section names, e.g. `pack,index`; default: all).

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_SRC_DIR, BenchError } from './lib.mjs';

export const description =
  'terabyte sparse pack, 4M-block index mount/inspect/transfer, DNS-Balance load, Redis Cluster, 10,000-image mirror';

const SECTION_DIR = join(BENCH_SRC_DIR, 'support');
const SECTION = /^scale-([a-z0-9-]+)\.mjs$/;

export async function run(ctx) {
  const wanted = process.env.BENCH_SCALE_SECTIONS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const files = (await readdir(SECTION_DIR)).filter((f) => SECTION.test(f)).sort();
  const sections = files.map((f) => ({ name: SECTION.exec(f)[1], file: f }));
  const unknown = (wanted ?? []).filter((w) => !sections.some((s) => s.name === w));
  if (unknown.length) {
    throw new BenchError(
      'USAGE',
      `unknown scale section(s): ${unknown.join(', ')}; have: ${sections.map((s) => s.name).join(', ')}`,
    );
  }
  for (const { name, file } of sections) {
    if (wanted && !wanted.includes(name)) continue;
    if (ctx.signal.aborted) break;
    const mod = await import(pathToFileURL(join(SECTION_DIR, file)).href);
    ctx.log(`section ${name}: ${mod.title ?? ''}`);
    try {
      await mod.run({ ...ctx, log: (m) => ctx.log(`${name}: ${m}`) });
    } catch (e) {
      ctx.table.error(`${name}.crash`, `section ${name}`, e instanceof BenchError ? e.message : (e.stack ?? String(e)));
    }
  }
}
