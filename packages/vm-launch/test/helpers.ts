import { execFileSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { capturedOutput } from '@thfc/testkit';
import { bundledHttpstorged } from '../src/httpstorged.js';
import { DEFAULT_QEMU_TOOLS } from '../src/qemu.js';
import type { VmIo } from '../src/vm-io.js';

export { tempDir } from '@thfc/testkit';

/** A VmIo over buffers: what the command printed is in out() / err(). */
export function testIo(
  o: {
    cwd?: string;
    signal?: AbortSignal;
    env?: Record<string, string | undefined>;
    stdin?: NodeJS.ReadableStream;
    tty?: { raw: boolean[] };
    tools?: VmIo['tools'];
    kvmDevice?: string;
    /** --via auto's view of the host: root with a usable FUSE device unless a test says otherwise. */
    root?: boolean;
    fuseDevice?: string;
  } = {},
): VmIo & { out: () => string; err: () => string } {
  return {
    ...capturedOutput(),
    stdin: o.stdin ?? Readable.from([]),
    signal: o.signal ?? new AbortController().signal,
    env: o.env ?? { PATH: process.env.PATH },
    cwd: o.cwd ?? process.cwd(),
    guestConsole: 'pipe',
    stdinIsTty: !!o.tty,
    setRawMode: o.tty ? (raw) => o.tty?.raw.push(raw) : undefined,
    tools: o.tools ?? DEFAULT_QEMU_TOOLS,
    httpstorged: () => bundledHttpstorged(process.execPath),
    hostKernel: 'test-kernel',
    kvmDevice: o.kvmDevice,
    // /dev/null: a device anyone can open, standing for a usable /dev/fuse on any test host.
    fuseDevice: o.fuseDevice ?? '/dev/null',
    root: o.root ?? true,
    now: () => new Date('2026-01-02T03:04:05Z'),
  };
}

/** Writes an executable shell script (a fake qemu, xl or VBoxManage) and returns its path. */
export async function script(path: string, body: string): Promise<string> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

const PACK = fileURLToPath(new URL('../../packer/dist/cli.js', import.meta.url));

/**
 * Writes image to dir/<name>.img and packs it with the real thfc-pack (from
 * its dist/) into dir/store in 64 KiB blocks; returns the index's path.
 */
export async function packImage(dir: string, name: string, image: Buffer): Promise<string> {
  await writeFile(join(dir, `${name}.img`), image);
  execFileSync(process.execPath, [PACK, 'pack', join(dir, `${name}.img`), '--store', join(dir, 'store'), '-b', '64K']);
  return join(dir, 'store', `${name}.idx`);
}
