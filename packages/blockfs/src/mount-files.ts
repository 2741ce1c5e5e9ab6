import type { MeasurementLog } from '@thfc/attest/measurement-log';
import type { ImageState } from './build-images.js';
import type { ImageFile, VirtualFile } from './fuse-adapter.js';
import { newReadStream } from './image-reader.js';
import type { MountStatus } from './mount.js';
import { updateFileText } from './version-watch.js';

/**
 * What a mount shows: MOUNTPOINT/NAME for each image, and under .thfc/ its
 * status files (stats.json, the measurement log, NAME.update for each image).
 */
export function mountFiles(
  images: readonly ImageState[],
  measurements: MeasurementLog,
  status: () => MountStatus,
): { images: ImageFile[]; status: VirtualFile[] } {
  const files: ImageFile[] = images.map((s) => ({
    name: s.index.header.name,
    size: s.index.header.size,
    open: (how) => {
      const stream = newReadStream(how);
      // Answered only once every measurement so far is in the log (and the TPM): measure before use.
      const read = async (buf: Buffer, len: number, pos: number) => {
        const n = await s.reader.read(buf, len, pos, stream);
        await measurements.settled();
        return n;
      };
      // With a TPM a reader must wait for its blocks' extends, so every read takes the path that waits.
      const readNow = measurements.immediate
        ? (buf: Buffer, len: number, pos: number) => s.reader.readNow(buf, len, pos, stream)
        : undefined;
      return { read, readNow };
    },
  }));
  const statusFiles: VirtualFile[] = [
    { name: 'stats.json', content: () => Buffer.from(`${JSON.stringify(status(), null, 2)}\n`) },
    { name: 'measurements', content: () => Buffer.from(measurements.text()) },
    ...images.map((s) => ({
      name: `${s.index.header.name}.update`,
      content: () => Buffer.from(s.watcher ? updateFileText(s.watcher.status()) : ''),
    })),
  ];
  return { images: files, status: statusFiles };
}
