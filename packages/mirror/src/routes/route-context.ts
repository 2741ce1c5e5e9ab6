import type { Logger } from '@thfc/store';
import type { BlockMemoryCache } from '../block-memory-cache.js';
import type { BufferPool } from '../buffer-pool.js';
import type { Metrics, MetricsGauges } from '../metrics.js';
import type { PullThrough } from '../pull-through.js';
import type { StoreReader } from '../store-reader.js';

/** What every route may use; the server builds it once. */
export interface RouteContext {
  readonly store: StoreReader;
  /** Present with --upstream. */
  readonly pull: PullThrough | undefined;
  readonly pool: BufferPool;
  /** Hot blocks in RAM; absent with --memory-cache 0. */
  readonly memory: BlockMemoryCache | undefined;
  readonly metrics: Metrics;
  readonly gauges: () => MetricsGauges;
  readonly logger: Logger;
}
