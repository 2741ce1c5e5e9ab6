import { closeSync, openSync, writeSync } from 'node:fs';
import { UsageError } from '@thfc/format';

/**
 * The daemon's log file, opened for appending. `reopen()` is logrotate's
 * `postrotate … kill -HUP`: the renamed file is closed and a new one opened
 * under the name. A line that cannot be written (a full disk) is dropped: the
 * mount must not die for its log.
 */
export class LogFile {
  private fd: number;

  constructor(readonly path: string) {
    this.fd = LogFile.open(path);
  }

  private static open(path: string): number {
    try {
      return openSync(path, 'a', 0o644);
    } catch (e) {
      throw new UsageError(`cannot open log file ${path}: ${(e as Error).message} (choose one with --log)`);
    }
  }

  write(line: string): void {
    try {
      writeSync(this.fd, line);
    } catch {
      // dropped: see the class comment
    }
  }

  /** Opens the file under its name again; on failure the old one stays in use and the error is thrown. */
  reopen(): void {
    const fd = LogFile.open(this.path);
    const old = this.fd;
    this.fd = fd;
    closeSync(old);
  }
}
