import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runList } from '../src/list.js';
import { tempDir, testIo } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeFile(
    join(dir, 'catalog.json'),
    JSON.stringify({
      format: 'thfc-catalog',
      version: 1,
      images: [{ name: 'debian', index: 'debian.idx', description: 'Debian 12', boot: { kernel: 'boot/vmlinux' } }],
    }),
  );
});
afterEach(() => cleanup());

describe('runList', () => {
  it('numbers the entries as the menu does, with absolute index URLs', async () => {
    const io = testIo({ cwd: dir });
    await runList({ catalog: '.' }, io);
    expect(io.out()).toBe(`1  debian  Debian 12  (file://${dir}/debian.idx)\n`);
  });
  it('--json gives the resolved entries', async () => {
    const io = testIo({ cwd: dir });
    await runList({ catalog: join(dir, 'catalog.json'), json: true }, io);
    const j = JSON.parse(io.out());
    expect(j.catalog).toBe(`file://${dir}/catalog.json`);
    expect(j.images[0]).toMatchObject({ name: 'debian', kernelUrl: `file://${dir}/boot/vmlinux` });
  });
});
