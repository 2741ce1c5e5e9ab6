import { execFileSync } from 'node:child_process';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOverlay, removeOverlay } from '../src/overlay.js';
import { DEFAULT_QEMU_TOOLS } from '../src/qemu.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

describe('overlay', () => {
  it('a qcow2 over a read-only raw image: guest writes land in the overlay, the image is untouched', async () => {
    const raw = join(dir, 'disk.img');
    const bytes = Buffer.alloc(1024 * 1024, 0x5a);
    await writeFile(raw, bytes);
    await chmod(raw, 0o444);
    const ov = join(dir, 'ov.qcow2');
    await createOverlay(DEFAULT_QEMU_TOOLS, { backing: raw, path: ov, signal: new AbortController().signal });
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', ov]).toString());
    expect(info).toMatchObject({ format: 'qcow2', 'backing-filename': raw, 'backing-filename-format': 'raw' });
    expect(info['virtual-size']).toBe(bytes.length);
    // write through the overlay as a guest would
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 4096', ov]);
    expect(execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x11 0 4096', ov]).toString()).toMatch(/read 4096/);
    expect((await readFile(raw)).equals(bytes)).toBe(true);
    await removeOverlay(ov);
    await expect(stat(ov)).rejects.toThrow();
    await removeOverlay(ov); // idempotent
  });
});
