import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { execFileP } from './processes.js';

const MiB = 1024 * 1024;

/**
 * Writes a test disk image of `parts`: 'zero' (real zero bytes), 'random'
 * (incompressible) and 'text' (compressible, distinct per block). Written in
 * 1 MiB pieces, so multi-hundred-MiB images cost little memory.
 */
export async function makeImage(
  path: string,
  parts: [kind: 'zero' | 'random' | 'text', mib: number][],
): Promise<number> {
  const fh = await open(path, 'w');
  let off = 0;
  let seed = 1;
  try {
    for (const [kind, mib] of parts) {
      for (let i = 0; i < mib; i++) {
        const b = kind === 'zero' ? Buffer.alloc(MiB) : kind === 'random' ? randomBytes(MiB) : textMiB(seed++);
        await fh.write(b, 0, b.length, off);
        off += b.length;
      }
    }
  } finally {
    await fh.close();
  }
  return off;
}

function textMiB(seed: number): Buffer {
  const line = Buffer.from(`thfc test image line, seed ${seed}, `.padEnd(63, '.') + '\n');
  const b = Buffer.alloc(MiB);
  for (let o = 0; o < MiB; o += 64) {
    line.copy(b, o);
    b.writeUInt32LE(o, o + 40); // distinct 256 KiB blocks, still compressible
  }
  return b;
}

/** An ext4 file system image of `mib` MiB holding a copy of directory `dir` (`mkfs.ext4 -d`, e2fsprogs). */
export async function makeExt4Image(path: string, dir: string, mib: number): Promise<void> {
  await execFileP('mkfs.ext4', ['-q', '-F', '-d', dir, path, `${mib}M`]);
}
