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
  /** Undefined once closed. */
  private closeHooks: (() => void)[] | undefined = [];

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    public route: RouteName,
    /** performance.now() when the request arrived. */
    readonly started: number,
  ) {}

  /** True once the exchange is over: its response closed, or its connection did. */
  get closed(): boolean {
    return this.closeHooks === undefined;
  }

  /** Runs `hook` when the exchange closes (now, if it has). Routes stop their work from here, not from res 'close'. */
  whenClosed(hook: () => void): void {
    if (this.closeHooks) this.closeHooks.push(hook);
    else hook();
  }

  /**
   * Ends the exchange: runs onClose and the hooks. The server calls it when
   * the response closes, and when the connection closes: a pipelined
   * response still queued behind another never gets a socket, so Node never
   * emits its 'close'. True only the first time.
   */
  close(): boolean {
    const hooks = this.closeHooks;
    if (!hooks) return false;
    this.closeHooks = undefined;
    this.onClose?.();
    for (const hook of hooks) hook();
    return true;
  }

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
