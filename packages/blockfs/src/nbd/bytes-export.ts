import type { NbdExport } from './session.js';

/**
 * A small read-only export of bytes in memory: the daemon's status files
 * (`.thfc/stats.json`, `.thfc/measurements`), a snapshot taken when the
 * client picks the export, as a mount's status files are snapshots at open.
 */
export function bytesExport(name: string, bytes: Buffer): NbdExport {
  return {
    name,
    size: bytes.length,
    blockSize: 4096,
    preferredBlockSize: 4096,
    isZero: () => false,
    connect: () => ({
      async read(buf, offset) {
        bytes.copy(buf, 0, offset, offset + buf.length);
      },
      async cache() {},
    }),
  };
}
