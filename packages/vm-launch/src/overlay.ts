import { rm } from 'node:fs/promises';
import { type QemuTools, qemuImg } from './qemu.js';
import { overlayCreateArgs } from './qemu-args.js';

/**
 * The copy-on-write overlay: a qcow2 file whose backing file is the raw image.
 * The guest writes into the overlay; the image (a read-only FUSE file, or a
 * local file) is only ever read, so one mounted image can back many guests.
 */
export async function createOverlay(
  tools: QemuTools,
  o: { backing: string; path: string; signal: AbortSignal },
): Promise<void> {
  await qemuImg(tools, overlayCreateArgs(o.backing, o.path), o.signal);
}

export async function removeOverlay(path: string): Promise<void> {
  await rm(path, { force: true });
}
