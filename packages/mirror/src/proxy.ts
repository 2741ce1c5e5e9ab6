import type { CommandIo } from '@thfc/cli';
import { UsageError } from '@thfc/format';
import { formatListen, parseServeListen } from './listen-address.js';
import { type FaultSpec, formatFaultSpec, parseFaultSpec } from './wan/fault-spec.js';
import { WanProxy } from './wan/wan-proxy.js';

/**
 * `thfc-mirror proxy UPSTREAM --inject SPEC`: a WAN link by hand. Puts the
 * fault-injecting WanProxy in front of one mirror (or any HTTP server) so a
 * client on the same machine sees latency, a bandwidth limit, 503s and resets
 * without tc/netem or leaving loopback.
 */

/** The port after the mirror's default 8080: `serve` and `proxy` with their defaults pair up. */
export const DEFAULT_PROXY_LISTEN = '127.0.0.1:8081';

export interface ProxyOptions {
  /** The far end of the simulated link: http(s)://HOST[:PORT]/[PATH/]. Clients ask the proxy for the same paths. */
  readonly upstream: string;
  /** HOST:PORT to listen on (port 0 picks a free one). */
  readonly listen?: string | undefined;
  /** A fault spec (`latency=50ms,jitter=10ms,bandwidth=2MB/s,error-rate=0.01,reset-rate=0.01,drip-rate=0.03`); none: a plain relay. */
  readonly inject?: string | undefined;
}

export interface ProxySummary {
  /** The proxy's URL: the upstream's path on the proxy's address. */
  readonly url: string;
  readonly upstream: string;
  /** The faults injected, in --inject form ('' for none). */
  readonly inject: string;
  readonly requests: number;
  /** Requests answered 503 on purpose. */
  readonly errors: number;
  /** Responses cut mid-body on purpose. */
  readonly resets: number;
  /** Responses whose body was dripped on purpose (sent or abandoned by the client). */
  readonly drips: number;
  /** Body bytes relayed to clients (what went over the simulated link). */
  readonly bytes: number;
  readonly seconds: number;
}

/** Checks the options and starts listening; the caller closes the proxy. */
export async function startProxy(options: ProxyOptions, components: { random?: () => number } = {}): Promise<WanProxy> {
  let upstream: URL;
  try {
    upstream = new URL(options.upstream);
  } catch {
    throw new UsageError(`proxy: "${options.upstream}" is not a URL (expected http://HOST:PORT/)`);
  }
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:')
    throw new UsageError(`proxy: ${options.upstream}: only http:// and https:// upstreams can be proxied`);
  const spec: FaultSpec = parseFaultSpec(options.inject ?? '');
  const listen = parseServeListen(options.listen ?? DEFAULT_PROXY_LISTEN);
  const proxy = new WanProxy(upstream.href, spec, components.random);
  try {
    return await proxy.listen(listen.host, listen.port);
  } catch (e) {
    await proxy.close().catch(() => {});
    throw new UsageError(`proxy: cannot listen on ${formatListen(listen)}: ${(e as Error).message}`);
  }
}

/** Runs the proxy until io.signal aborts (SIGINT/SIGTERM), then reports what went through it. */
export async function runProxy(
  options: ProxyOptions,
  io: CommandIo,
  components: { random?: () => number } = {},
): Promise<ProxySummary> {
  const started = performance.now();
  const proxy = await startProxy(options, components);
  const inject = formatFaultSpec(proxy.spec);
  const url = proxy.url;
  io.stderr.write(`thfc-mirror: proxy ${url} -> ${options.upstream}, injecting ${inject || 'nothing'}\n`);
  if (!io.signal.aborted) {
    await new Promise<void>((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  await proxy.close();
  return {
    url,
    upstream: options.upstream,
    inject,
    ...proxy.counters,
    seconds: (performance.now() - started) / 1000,
  };
}
