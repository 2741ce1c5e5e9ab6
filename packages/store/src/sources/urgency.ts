import type { SourceOptions } from '@thfc/format';

/** A reader waits on it (demand), or nobody does yet (read-ahead, prefetch, fill). */
export type Priority = 'demand' | 'background';

/**
 * The priority of one fetch, which may rise while it waits. Read-ahead,
 * prefetch and fill ask for blocks at background priority; when a reader
 * starts waiting on such a block, the shared fetch is raised to demand and a
 * queue still holding it (an HTTP mirror's background queue) moves it to the
 * demand queue. So a reader never waits at background priority, and the block
 * is still downloaded once: no second request races the first.
 *
 * A fetch already on the wire is not restarted: it is as far along as a new
 * demand request could be.
 */
export class Urgency {
  private level: Priority;
  private readonly listeners = new Set<() => void>();

  constructor(initial: Priority) {
    this.level = initial;
  }

  get priority(): Priority {
    return this.level;
  }

  /** background → demand, telling every queue that holds the fetch; demand stays demand. */
  raise(): void {
    if (this.level === 'demand') return;
    this.level = 'demand';
    for (const listener of [...this.listeners]) listener();
    this.listeners.clear();
  }

  /** Calls `listener` once if the fetch is raised; returns a function that stops listening. */
  onRaise(listener: () => void): () => void {
    if (this.level === 'demand') return () => {};
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** SourceOptions plus the fetch's Urgency, which blockfs' own sources pass down and HTTP mirrors act on. */
export interface FetchOptions extends SourceOptions {
  readonly urgency?: Urgency | undefined;
  /**
   * The longest one exchange may take once it leaves this client, in ms: a
   * source that queues requests (an HTTP mirror's window) starts the clock when
   * the request gets its slot, so waiting behind this client's own requests is
   * never counted as the mirror's fault. Sources without a queue ignore it.
   */
  readonly timeoutMs?: number | undefined;
  /**
   * Called once when the request leaves this client's queue and goes on the
   * wire (an HTTP mirror's window granted its slot). Failover times hedges
   * from it: a raised read-ahead out that long is slow whoever waits, and a
   * request still queued is never hedged on the same mirror (so a source
   * that times itself must call it, see FailoverMirror.timesItself).
   */
  readonly onSent?: (() => void) | undefined;
  /**
   * Called at most once when the answer has begun but its body comes far
   * too slowly for an ordinary transfer (an HTTP mirror's STALLING_FACTOR):
   * a dripping response. The request goes on; Failover hedges it at once.
   */
  readonly onStalling?: (() => void) | undefined;
  /**
   * Called when the answer's headers arrive and on every piece of its body
   * that follows, with the body bytes received so far and, when known, the
   * whole body's length: Failover's clock hedge then times a body from its
   * last byte, so a response arriving at a steady pace is never hedged for
   * being long, only one that has stalled, and a body wholly received
   * (being checked) not at all.
   */
  readonly onProgress?: ((received: number, total: number | undefined) => void) | undefined;
}

/** The priority a request has now: its urgency's when it has one, else its fixed priority (demand by default). */
export function currentPriority(options: FetchOptions | undefined): Priority {
  return options?.urgency?.priority ?? options?.priority ?? 'demand';
}
