import { UsageError } from '@thfc/format';

/**
 * Loopback port 8080: a first `thfc-mirror serve STORE` exposes nothing to
 * the network, and 8080 is the conventional unprivileged HTTP port (80 needs
 * root). A public mirror says `--listen 0.0.0.0:80` or sits behind a proxy.
 */
export const DEFAULT_SERVE_LISTEN = '127.0.0.1:8080';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `HOST:PORT` or `[IPv6]:PORT`; the host is an IP address or `localhost`, port 0 picks a free one. */
export function parseServeListen(text: string, flag = '--listen'): ListenAddress {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) {
    throw new UsageError(`bad ${flag} "${text}": expected HOST:PORT or [IPv6]:PORT, e.g. ${DEFAULT_SERVE_LISTEN}`);
  }
  return { host: m[1] as string, port };
}

/** `host:port`, bracketing IPv6, as a URL authority. */
export function formatListen(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
