import type { Exchange } from './exchange.js';
import type { RouteContext } from './route-context.js';

/**
 * `GET|HEAD /healthz`: 200 `ok` while the store is readable, else 503. It
 * bypasses the in-flight bound: a load balancer must be able to tell a busy
 * mirror from a dead one.
 */
export async function serveHealth(ex: Exchange, ctx: RouteContext): Promise<void> {
  if (await ctx.store.healthy()) ex.reply(200, 'ok\n', { 'cache-control': 'no-store' });
  else ex.reply(503, 'store unreadable\n');
}
