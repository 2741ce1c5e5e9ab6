import type { Exchange } from './exchange.js';
import type { RouteContext } from './route-context.js';

/** `GET|HEAD /metrics`: Prometheus text exposition (metrics.ts). Bypasses the in-flight bound, like /healthz. */
export function serveMetrics(ex: Exchange, ctx: RouteContext): void {
  ex.reply(200, ctx.metrics.render(ctx.gauges()), {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'cache-control': 'no-store',
  });
}
