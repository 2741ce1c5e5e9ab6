import { type Priority, Urgency } from '@thfc/store';

/**
 * One shared run per key (a block id), however many callers wait on it: a
 * fetch in cached(), a file check in checked(). The run is started without
 * any caller's signal, since others may be waiting on it; each caller stops
 * waiting on its own abort (raceAbort) and the run goes on. A caller at
 * demand priority that joins a run started at background priority (read-ahead,
 * prefetch, fill) raises the run's Urgency, so a queue still holding its work
 * moves it up. The entry is removed once the run settles, fulfilled or not.
 */
export class SingleFlight<T> {
  private readonly entries = new Map<string, { readonly promise: Promise<T>; readonly urgency: Urgency }>();

  /**
   * The keys with a run in flight: the Map itself, not a method, so a read's
   * synchronous path (readNow) asks it without a call into this class.
   */
  readonly running: ReadonlyMap<string, unknown> = this.entries;

  /** The run in flight for `key`, joined (raised if `priority` is demand), or a new one started by `work`. */
  run(key: string, priority: Priority, work: (urgency: Urgency) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return this.join(key, priority, signal) ?? this.start(key, priority, work, signal);
  }

  /** The run in flight for `key`, joined and raised as in run(); undefined when there is none. */
  join(key: string, priority: Priority, signal?: AbortSignal): Promise<T> | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // A reader now waits on work read-ahead or prefetch asked for: raise the one run to demand.
    if (priority === 'demand') entry.urgency.raise();
    return waitOn(entry.promise, signal);
  }

  /**
   * A new run for `key` by `work`, even if one is in flight (a caller whose
   * joined run did not give what it needs): later callers join the new one.
   */
  start(key: string, priority: Priority, work: (urgency: Urgency) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const urgency = new Urgency(priority);
    const entry = { promise: work(urgency), urgency };
    this.entries.set(key, entry);
    entry.promise
      .finally(() => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      })
      .catch(() => {});
    return waitOn(entry.promise, signal);
  }
}

function waitOn<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  return signal ? raceAbort(promise, signal) : promise;
}

/** `p`, or the signal's reason as soon as it aborts (p goes on; its outcome is then ignored). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
