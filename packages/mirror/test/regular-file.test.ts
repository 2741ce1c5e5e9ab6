import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OpenFiles } from '@thfc/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegularFile, REGULAR_FILES } from '../src/regular-file.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeFile(join(dir, 'a'), 'a'.repeat(10));
  await symlink(join(dir, 'a'), join(dir, 'link'));
  await mkdir(join(dir, 'sub'));
});
afterAll(() => cleanup());

describe('openRegularFile', () => {
  it('opens regular files only: a symlink, a directory or a missing path is undefined', async () => {
    const f = await openRegularFile(join(dir, 'a'));
    expect(f?.size).toBe(10);
    expect(f?.identity).toMatch(/^\d+:\d+:10:/);
    expect(await openRegularFile(join(dir, 'link'))).toBeUndefined();
    expect(await openRegularFile(join(dir, 'sub'))).toBeUndefined();
    expect(await openRegularFile(join(dir, 'nope'))).toBeUndefined();
    expect(await openRegularFile(join(dir, 'a', 'x'))).toBeUndefined();
  });

  it('through OpenFiles, what it refuses to open is undefined and leaves nothing behind', async () => {
    const files = new OpenFiles({ opener: REGULAR_FILES });
    for (const name of ['link', 'missing', 'sub']) expect(await files.acquire(name, join(dir, name))).toBeUndefined();
    expect(files.size).toBe(0);
    files.close();
  });
});
