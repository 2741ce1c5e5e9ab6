/**
 * Lines are batched and written at the end of the event-loop turn, or sooner
 * once this many bytes are waiting: stdout to a pipe is synchronous on Linux,
 * and one write per request would cost a syscall per request on the hot path.
 * 64 KiB is ~500 lines, and bounds what a crash can lose.
 */
export const DEFAULT_ACCESS_LOG_FLUSH_BYTES = 64 * 1024;

/** Longest request target logged; the rest is cut (hostile targets can be 1 KiB of junk). */
const MAX_LOGGED_TARGET = 256;

export interface AccessLogEntry {
  readonly remote: string | undefined;
  readonly method: string | undefined;
  readonly target: string | undefined;
  readonly status: number;
  readonly bytes: number;
  readonly ms: number;
}

/**
 * One line per answered request:
 *
 *     2026-11-27T09:00:00.123Z 127.0.0.1 "GET /blocks/ab/ab12… HTTP/1.1" 200 262144 0.41ms
 *
 * The target is the raw request line's, with every byte outside printable
 * ASCII, and `"` and `\`, escaped as `\xHH`: a hostile target cannot forge a
 * line or break a parser.
 */
export class AccessLog {
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled = false;

  constructor(
    private readonly components: { readonly write: (text: string) => void; readonly now?: () => Date },
    private readonly options: { readonly flushBytes?: number } = {},
  ) {}

  record(e: AccessLogEntry): void {
    const time = (this.components.now?.() ?? new Date()).toISOString();
    const line = `${time} ${e.remote ?? '-'} "${e.method ?? '-'} ${escapeTarget(e.target ?? '')} HTTP/1.1" ${e.status} ${e.bytes} ${e.ms.toFixed(2)}ms\n`;
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= (this.options.flushBytes ?? DEFAULT_ACCESS_LOG_FLUSH_BYTES)) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    this.components.write(text);
  }
}

export function escapeTarget(target: string): string {
  const clipped = target.length > MAX_LOGGED_TARGET ? target.slice(0, MAX_LOGGED_TARGET) : target;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control bytes are exactly what must be escaped
  const escaped = clipped.replace(/[\x00-\x1f\x7f-\uffff"\\]/g, (c) => {
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
  return clipped === target ? escaped : `${escaped}...`;
}
