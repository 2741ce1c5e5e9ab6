import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasBootSignature, readsBootSector, watchFirstConsoleOutput } from '../src/boot-watch.js';
import { tempDir } from './helpers.js';

const sector = (end: [number, number]) => {
  const b = Buffer.alloc(512);
  b[510] = end[0];
  b[511] = end[1];
  return b;
};

describe('hasBootSignature', () => {
  it('is 0x55 0xAA at bytes 510-511 of a whole sector, and nothing else', () => {
    expect(hasBootSignature(sector([0x55, 0xaa]))).toBe(true);
    expect(hasBootSignature(sector([0xaa, 0x55]))).toBe(false);
    expect(hasBootSignature(Buffer.from('hello, a text file\n'))).toBe(false);
    expect(hasBootSignature(sector([0x55, 0xaa]).subarray(0, 511))).toBe(false);
  });
});

describe('readsBootSector / watchFirstConsoleOutput', () => {
  it('reads the first sector of a file; undefined when it cannot be read', async () => {
    const { dir, cleanup } = await tempDir('thfc-boot-watch-');
    try {
      await writeFile(join(dir, 'mbr.img'), Buffer.concat([sector([0x55, 0xaa]), Buffer.alloc(512)]));
      await writeFile(join(dir, 'text.img'), 'not a disk\n');
      expect(await readsBootSector(join(dir, 'mbr.img'))).toBe(true);
      expect(await readsBootSector(join(dir, 'text.img'))).toBe(false);
      expect(await readsBootSector(join(dir, 'missing.img'))).toBeUndefined();
    } finally {
      await cleanup();
    }
  });

  it('times out on a console that stays empty, never once it has said anything', async () => {
    const { dir, cleanup } = await tempDir('thfc-boot-watch-');
    try {
      const silent = watchFirstConsoleOutput(join(dir, 'silent.log'), 200, new AbortController().signal);
      await writeFile(join(dir, 'talks.log'), '');
      const talks = watchFirstConsoleOutput(join(dir, 'talks.log'), 600, new AbortController().signal);
      await writeFile(join(dir, 'talks.log'), 'SeaBIOS\n');
      await new Promise((r) => setTimeout(r, 1_000));
      expect(silent.timedOut.aborted).toBe(true);
      expect(talks.timedOut.aborted).toBe(false);
      talks.stop();
    } finally {
      await cleanup();
    }
  });
});
