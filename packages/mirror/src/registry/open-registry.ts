import { UsageError } from '@thfc/format';
import type { Logger } from '@thfc/store';
import { FileRegistry } from './file-registry.js';
import { MemoryRegistry } from './memory-registry.js';
import { RedisRegistry } from './redis-registry.js';
import type { Registry } from './registry.js';

export interface RegistrySpec {
  /** `redis://HOST[:PORT][/DB]`, `redis+cluster://…` or `redis+sentinel://…`: the fleet registry. */
  readonly redis?: string | undefined;
  /** `--redis-cluster`: the `redis://` URL names seed nodes of a Redis Cluster. */
  readonly redisCluster?: boolean | undefined;
  /** A mirrors file (mirrors-file.ts): the embedded default for one machine. */
  readonly mirrorsFile?: string | undefined;
  /**
   * false: a Redis that does not answer yet is not an error; the registry
   * connects in the background (`serve`, whose heartbeat retries every beat,
   * as docs/dns-balance.md promises). Default true: checked now.
   */
  readonly waitForRedis?: boolean | undefined;
}

/**
 * The registry the command-line options name:
 * - `--redis URL` (with `--redis-cluster`, a cluster): Redis, connected and checked (MirrorUnavailableError if it
 *   does not answer within a few seconds);
 * - `--mirrors FILE`: the static mirrors file, read now so a mistake in it is
 *   reported at start (UsageError with its line, InputError if missing);
 * - neither: an empty in-process registry, so `serve` heartbeats harmlessly
 *   and `dns` answers with no mirrors until one registers in this process.
 * Both at once is a UsageError: two sources of truth would disagree.
 */
export async function openRegistry(
  spec: RegistrySpec,
  components: { logger?: Pick<Logger, 'fault'>; signal?: AbortSignal } = {},
): Promise<Registry> {
  if (spec.redis && spec.mirrorsFile) {
    throw new UsageError('--redis and --mirrors both name a registry; give one');
  }
  if (spec.redisCluster && !spec.redis) throw new UsageError('--redis-cluster needs --redis URL (a seed node)');
  if (spec.redis && spec.waitForRedis === false) {
    return RedisRegistry.open(
      { logger: components.logger },
      { url: spec.redis, cluster: spec.redisCluster },
      components.signal,
    );
  }
  if (spec.redis) {
    return RedisRegistry.connect(
      { logger: components.logger },
      { url: spec.redis, cluster: spec.redisCluster },
      components.signal,
    );
  }
  if (spec.mirrorsFile) {
    const registry = new FileRegistry({}, { file: spec.mirrorsFile });
    await registry.entries(components.signal);
    return registry;
  }
  return new MemoryRegistry();
}
