import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { RouteName } from './request-target.js';

/**
 * One request and its response, with what the server records when it ends:
 * the route (a fixed name, never the raw path) and the body bytes sent.
 */
export class Exchange {
  /** Body bytes handed to the response so far. */
  bytes = 0;
  /** Run once when the response has closed (sent or aborted): buffers it was writing may be reused then. */
  onClose: (() => void) | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    public route: RouteName,
    /** performance.now() when the request arrived. */
    readonly started: number,
  ) {}

  get head(): boolean {
    return this.req.method === 'HEAD';
  }

  /**
   * A small complete answer: a status line, a short text body (omitted for
   * HEAD) and headers. Error answers are never cached: the condition (a
   * missing block mid-sync, an overloaded mirror) is temporary.
   */
  reply(status: number, body: string, headers: OutgoingHttpHeaders = {}): void {
    const res = this.res;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const bytes = Buffer.byteLength(body);
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': bytes,
      ...(status >= 400 ? { 'cache-control': 'no-store' } : {}),
      ...headers,
    });
    if (this.head) res.end();
    else {
      this.bytes += bytes;
      res.end(body);
    }
  }
}
