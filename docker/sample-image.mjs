// Writes the fleet's sample disk image unless one is there already (a raw image of your own at
// docker/images/sample.img is published instead): SIZE MiB of text, zeros and random bytes, so a mount shows
// compression, zero blocks and incompressible blocks at work.
//   node sample-image.mjs PATH [SIZE-MIB]   (default 64)
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

const [path, mib = '64'] = process.argv.slice(2);
if (!path || !/^[1-9]\d{0,5}$/.test(mib)) {
  process.stderr.write('usage: node sample-image.mjs PATH [SIZE-MIB]\n');
  process.exit(2);
}
if (existsSync(path)) {
  process.stdout.write(`sample-image: keeping ${path}\n`);
  process.exit(0);
}
mkdirSync(dirname(path), { recursive: true });
const MiB = 1024 * 1024;
const tmp = `${path}.tmp-${process.pid}`;
const fd = openSync(tmp, 'w');
for (let i = 0; i < Number(mib); i++) {
  // A quarter text, a quarter zeros, a quarter random, then text again: in 1 MiB stripes.
  const kind = i % 4;
  const text = () => Buffer.from(`thfc sample block ${i} `.repeat(MiB / 16).slice(0, MiB));
  writeSync(fd, kind === 1 ? Buffer.alloc(MiB) : kind === 2 ? randomBytes(MiB) : text());
}
closeSync(fd);
renameSync(tmp, path);
process.stdout.write(`sample-image: wrote ${path} (${mib} MiB)\n`);
