import { createHash } from 'node:crypto';
import { encodeListing } from '../store-listing.js';
import type { Exchange } from './exchange.js';
import { ROOT_FILE_CACHE_CONTROL } from './file-route.js';
import type { RouteContext } from './route-context.js';
import { sendBuffer } from './send-representation.js';

/** `GET|HEAD /index.json`: the store listing (store-listing.ts), cached like the indexes it lists. */
export async function serveListing(ex: Exchange, ctx: RouteContext): Promise<void> {
  const body = Buffer.from(encodeListing(await ctx.store.listIndexes()));
  const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
  sendBuffer(
    ex,
    { size: body.length, etag, contentType: 'application/json', cacheControl: ROOT_FILE_CACHE_CONTROL },
    body,
  );
}
