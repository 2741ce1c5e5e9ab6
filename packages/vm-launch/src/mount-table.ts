import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * Is PATH a mount point now? (/proc/self/mountinfo, field 5, octal escapes
 * decoded.) Kept here rather than imported from @thfc/blockfs, whose entry
 * point loads the FUSE binding that thfc-vm never needs in-process.
 */
export async function isMounted(path: string): Promise<boolean> {
  const abs = resolve(path);
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((line) => {
    const field = line.split(' ')[4];
    return (
      field !== undefined &&
      field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8))) === abs
    );
  });
}

/** Detaches a FUSE mount even when busy or when its daemon is gone. */
export async function lazyUnmount(path: string): Promise<void> {
  await execFileP('fusermount', ['-u', '-z', resolve(path)], { timeout: 10_000 }).catch(() =>
    execFileP('umount', ['-l', resolve(path)], { timeout: 10_000 }),
  );
}
