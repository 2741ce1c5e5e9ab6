/**
 * How a boot reaches an index's image: through httpstorged's FUSE mount (a
 * file the overlay names as its backing file), or through `httpstorged nbd`
 * (an NBD export qemu opens itself, reconnecting if the daemon restarts). Pure.
 */
export type Via = 'nbd' | 'fuse';
export type ViaRequest = Via | 'auto';

export interface ViaChoice {
  readonly via: Via;
  readonly reason: string;
}

/**
 * auto: NBD where a FUSE mount cannot be made (no usable /dev/fuse, or not
 * root); otherwise FUSE, which is as fast to a guest's marker on the test
 * guest (docs/thfc-vm.md) and is what a guest's disk file has always been.
 */
export function chooseVia(request: ViaRequest, host: { readonly fuse: boolean; readonly root: boolean }): ViaChoice {
  if (request !== 'auto') return { via: request, reason: `${request} (asked for)` };
  if (!host.fuse) return { via: 'nbd', reason: 'nbd (no usable /dev/fuse here)' };
  if (!host.root) return { via: 'nbd', reason: 'nbd (not root: no FUSE mount)' };
  return { via: 'fuse', reason: 'fuse (root, with /dev/fuse)' };
}

/**
 * A guest's qemu waits this long for a restarted daemon before its disk
 * requests fail: a supervisor restarts a daemon in seconds, a SIGHUP hands
 * over in well under one.
 */
export const DEFAULT_RECONNECT_DELAY_S = 60;

/**
 * The export as qemu names a disk: a `json:` pseudo-filename, a raw node over
 * an nbd node on the daemon's socket, usable as an overlay's backing file and
 * as a -drive file. The empty export name is the daemon's one image.
 */
export function nbdDisk(socket: string, reconnectDelayS = DEFAULT_RECONNECT_DELAY_S): string {
  return `json:${JSON.stringify({
    driver: 'raw',
    file: { driver: 'nbd', server: { type: 'unix', path: socket }, export: '', 'reconnect-delay': reconnectDelayS },
  })}`;
}
