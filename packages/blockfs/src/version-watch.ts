import type { Logger } from '@thfc/store';
import { revalidateIndex } from '@thfc/store';
import type { Dispatcher } from 'undici';

/**
 * Ten minutes: a new image version is news for the next boot, not this
 * second, and a 304 every ten minutes per client is nothing for a mirror
 * (CernVM-FS clients revalidate their catalog on a TTL of a few minutes).
 */
export const DEFAULT_CHECK_INTERVAL_MS = 10 * 60_000;

/** A newer version than the one mounted, as the image's index location now publishes it. */
export interface UpdateNotice {
  readonly digest: string;
  /** The new index's `created` header. */
  readonly created: string;
  /** When this daemon first saw it (ISO 8601). */
  readonly noticed: string;
}

export interface VersionCheckStatus {
  /** The newest version seen that differs from the one mounted; null while they agree. */
  readonly update: UpdateNotice | null;
  /** The last check that got an answer, and the last failure's message (null after a success). */
  readonly checked: string | null;
  readonly lastError: string | null;
}

/**
 * Revalidates one image's index URL every `intervalMs` (If-None-Match, so
 * an unchanged index costs a 304) and tells when it names another version:
 * one log line per new digest, and `status()` for stats and
 * `.thfc/NAME.update`. It never changes what the mount serves: switching is
 * a remount, by the user or by --auto-switch.
 */
export class VersionWatcher {
  private etag: string | undefined;
  private update: UpdateNotice | null = null;
  private checked: string | null = null;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly components: { dispatcher?: Dispatcher | undefined; logger: Logger; now?: () => Date },
    private readonly options: {
      readonly url: string;
      readonly name: string;
      /** The digest mounted. */
      readonly mounted: string;
      readonly intervalMs: number;
      readonly timeoutMs?: number | undefined;
      /** The validator the mounted bytes came with: the first check is then a revalidation, not a download. */
      readonly etag?: string | undefined;
      /** Called once per new version seen. */
      readonly onUpdate?: (notice: UpdateNotice) => void;
    },
  ) {
    this.etag = options.etag;
  }

  status(): VersionCheckStatus {
    return { update: this.update, checked: this.checked, lastError: this.lastError };
  }

  /** Checks every interval until `signal` aborts; the first check is one interval after the mount. */
  start(signal: AbortSignal): void {
    const schedule = () => {
      this.timer = setTimeout(async () => {
        await this.check(signal);
        if (!signal.aborted) schedule();
      }, this.options.intervalMs);
      this.timer.unref();
    };
    signal.addEventListener('abort', () => clearTimeout(this.timer), { once: true });
    schedule();
  }

  /** One check; never throws (a failure is kept in the status and logged once per message). */
  async check(signal: AbortSignal): Promise<void> {
    const now = () => (this.components.now?.() ?? new Date()).toISOString();
    try {
      const r = await revalidateIndex(this.options.url, this.etag, this.components.dispatcher, {
        timeoutMs: this.options.timeoutMs,
        signal,
      });
      this.checked = now();
      this.lastError = null;
      if (r.unchanged) return;
      this.etag = r.etag;
      const digest = r.decoded.digest;
      if (digest === this.options.mounted) {
        this.update = null;
        return;
      }
      if (this.update?.digest === digest) return;
      this.update = { digest, created: r.decoded.index.header.created, noticed: now() };
      this.components.logger.info(
        `newer version of ${this.options.name} available: ${digest}, published ${this.update.created} (mounted: ${this.options.mounted}); remount to use it`,
      );
      this.options.onUpdate?.(this.update);
    } catch (e) {
      if (signal.aborted) return;
      const message = (e as Error).message;
      if (message !== this.lastError) this.components.logger.fault(`version check of ${this.options.name}: ${message}`);
      this.lastError = message;
    }
  }
}

/** `.thfc/NAME.update`: empty while the mounted version is the latest, else `DIGEST CREATED\n`. */
export function updateFileText(status: VersionCheckStatus): string {
  return status.update ? `${status.update.digest} ${status.update.created}\n` : '';
}
