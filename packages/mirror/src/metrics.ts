import { ROUTE_NAMES, type RouteName } from './routes/request-target.js';

/**
 * Latency buckets in seconds, from 0.5 ms (a page-cached block on loopback)
 * to 10 s (a pull-through fetch from a slow upstream, the failover
 * deadline). Roughly ×2–2.5 apart, so a quantile read off them is within a
 * factor of ~2, which is all an operator needs to tell disk from network.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Faults worth an alert, each counted once where it happens:
 * - `io`: reading the store failed (not a missing file: a disk or permission problem);
 * - `upstream`: pull-through could not get a block or index (every upstream failed);
 * - `corrupt`: an upstream sent bytes that failed verification (refused, never stored);
 * - `store_write`: a pulled block or index could not be stored (disk full…); it was still served;
 * - `aborted`: the client went away before the response was complete.
 */
export type ErrorKind = 'io' | 'upstream' | 'corrupt' | 'store_write' | 'aborted';
const ERROR_KINDS: readonly ErrorKind[] = ['io', 'upstream', 'corrupt', 'store_write', 'aborted'];

/** What pull-through did for one missing block or index. */
export type PullResult = 'fetched' | 'not_found' | 'failed';
const PULL_RESULTS: readonly PullResult[] = ['fetched', 'not_found', 'failed'];

/** Gauges are read when /metrics is scraped, never maintained on the hot path. */
export interface MetricsGauges {
  readonly inflight: number;
  readonly maxInflight: number;
  readonly connections: number;
  readonly openFiles: number;
  readonly memoryCacheBytes: number;
  /** A counter kept by the memory cache itself. */
  readonly memoryCacheHits: number;
}

interface RouteCounters {
  /** Requests by status code. */
  readonly byStatus: Map<number, number>;
  bytes: number;
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  readonly buckets: Float64Array;
  seconds: number;
  count: number;
}

/**
 * The mirror's counters, rendered in the Prometheus text exposition format
 * (version 0.0.4). Recording is a few array writes: it runs on every request.
 */
export class Metrics {
  private readonly routes = new Map<RouteName, RouteCounters>();
  private readonly errors = new Map<ErrorKind, number>(ERROR_KINDS.map((k) => [k, 0]));
  private readonly pulls = new Map<PullResult, number>(PULL_RESULTS.map((k) => [k, 0]));
  private pulledBytes = 0;
  private readonly startedAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
    for (const r of ROUTE_NAMES) {
      this.routes.set(r, {
        byStatus: new Map(),
        bytes: 0,
        buckets: new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1),
        seconds: 0,
        count: 0,
      });
    }
  }

  /** One answered request: its route, status, body bytes sent and time from arrival to the last byte. */
  request(route: RouteName, status: number, bytes: number, seconds: number): void {
    const c = this.routes.get(route) as RouteCounters;
    c.byStatus.set(status, (c.byStatus.get(status) ?? 0) + 1);
    c.bytes += bytes;
    c.seconds += seconds;
    c.count++;
    let i = 0;
    while (i < LATENCY_BUCKETS_SECONDS.length && seconds > (LATENCY_BUCKETS_SECONDS[i] as number)) i++;
    (c.buckets as Float64Array)[i] = (c.buckets[i] as number) + 1;
  }

  error(kind: ErrorKind): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  pull(result: PullResult, bytes = 0): void {
    this.pulls.set(result, (this.pulls.get(result) ?? 0) + 1);
    this.pulledBytes += bytes;
  }

  /** Requests answered with `status` on `route` so far (tests and the heartbeat read this). */
  count(route: RouteName, status?: number): number {
    const c = this.routes.get(route) as RouteCounters;
    if (status === undefined) return c.count;
    return c.byStatus.get(status) ?? 0;
  }

  /** Requests answered so far, on every route. */
  totalRequests(): number {
    let n = 0;
    for (const c of this.routes.values()) n += c.count;
    return n;
  }

  errorCount(kind: ErrorKind): number {
    return this.errors.get(kind) ?? 0;
  }

  render(gauges: MetricsGauges): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };

    family('thfc_mirror_requests_total', 'counter', 'Requests answered, by route and HTTP status code.');
    for (const [route, c] of this.routes) {
      for (const [status, n] of [...c.byStatus].sort((a, b) => a[0] - b[0])) {
        out.push(`thfc_mirror_requests_total{route="${route}",code="${status}"} ${n}`);
      }
    }
    family('thfc_mirror_response_bytes_total', 'counter', 'Response body bytes sent, by route.');
    for (const [route, c] of this.routes) out.push(`thfc_mirror_response_bytes_total{route="${route}"} ${c.bytes}`);

    family(
      'thfc_mirror_request_duration_seconds',
      'histogram',
      'Time from a request arriving to its last byte being handed to the kernel, by route.',
    );
    for (const [route, c] of this.routes) {
      let cumulative = 0;
      for (const [i, le] of LATENCY_BUCKETS_SECONDS.entries()) {
        cumulative += c.buckets[i] as number;
        out.push(`thfc_mirror_request_duration_seconds_bucket{route="${route}",le="${le}"} ${cumulative}`);
      }
      out.push(`thfc_mirror_request_duration_seconds_bucket{route="${route}",le="+Inf"} ${c.count}`);
      out.push(`thfc_mirror_request_duration_seconds_sum{route="${route}"} ${c.seconds}`);
      out.push(`thfc_mirror_request_duration_seconds_count{route="${route}"} ${c.count}`);
    }

    family('thfc_mirror_errors_total', 'counter', 'Faults: io, upstream, corrupt, store_write, aborted.');
    for (const [kind, n] of this.errors) out.push(`thfc_mirror_errors_total{kind="${kind}"} ${n}`);
    family('thfc_mirror_pull_through_total', 'counter', 'Pull-through fetches of missing blocks and indexes.');
    for (const [result, n] of this.pulls) out.push(`thfc_mirror_pull_through_total{result="${result}"} ${n}`);
    family('thfc_mirror_pull_through_bytes_total', 'counter', 'Bytes fetched from upstreams and stored.');
    out.push(`thfc_mirror_pull_through_bytes_total ${this.pulledBytes}`);

    family('thfc_mirror_inflight_requests', 'gauge', 'Requests being answered now.');
    out.push(`thfc_mirror_inflight_requests ${gauges.inflight}`);
    family('thfc_mirror_max_inflight_requests', 'gauge', 'The bound past which requests get 503.');
    out.push(`thfc_mirror_max_inflight_requests ${gauges.maxInflight}`);
    family('thfc_mirror_open_connections', 'gauge', 'Open client connections.');
    out.push(`thfc_mirror_open_connections ${gauges.connections}`);
    family('thfc_mirror_open_files', 'gauge', 'Block files held open by the descriptor cache.');
    out.push(`thfc_mirror_open_files ${gauges.openFiles}`);
    family('thfc_mirror_memory_cache_bytes', 'gauge', 'Bytes of hot blocks held in RAM.');
    out.push(`thfc_mirror_memory_cache_bytes ${gauges.memoryCacheBytes}`);
    family('thfc_mirror_memory_cache_hits_total', 'counter', 'Blocks served from RAM without touching the store.');
    out.push(`thfc_mirror_memory_cache_hits_total ${gauges.memoryCacheHits}`);
    family('thfc_mirror_uptime_seconds', 'gauge', 'Seconds since the server started.');
    out.push(`thfc_mirror_uptime_seconds ${((this.now() - this.startedAt) / 1000).toFixed(3)}`);
    return `${out.join('\n')}\n`;
  }
}
