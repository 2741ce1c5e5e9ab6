import type { Duplex } from 'node:stream';

/** The peer hung up (or the socket failed) before the bytes a session waited for arrived. */
export class ConnectionClosedError extends Error {}

/**
 * Exact-length reads from a socket: read(n) resolves with exactly n bytes, or
 * rejects once the socket ends first. At most one read waits at a time. The
 * socket is paused while `highWater` bytes wait unread and no read wants
 * them, so a client that sends faster than it is served is held back by TCP,
 * not buffered without bound.
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private closed: Error | undefined;

  constructor(
    private readonly socket: Duplex,
    private readonly highWater = 1024 * 1024,
  ) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.buffered += c.length;
      this.wake();
      if (!this.waiter && this.buffered >= this.highWater) socket.pause();
    });
    const end = (e?: Error) => {
      this.closed ??= new ConnectionClosedError(e ? `connection failed: ${e.message}` : 'the client hung up');
      this.wake();
    };
    socket.on('end', () => end());
    socket.on('close', () => end());
    socket.on('error', end);
  }

  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new Error('SocketReader: one read at a time'));
    if (this.buffered >= n) return Promise.resolve(this.take(n));
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.socket.resume();
    });
  }

  /** Consumes and drops n bytes (a payload the session refuses), a megabyte at a time. */
  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) {
      const k = Math.min(left, this.highWater);
      await this.read(k);
      left -= k;
    }
  }

  /** Fails the waiting read, if any, and every later one. */
  close(e: Error): void {
    this.closed ??= e;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.buffered >= w.n) {
      this.waiter = undefined;
      w.resolve(this.take(w.n));
    } else if (this.closed) {
      this.waiter = undefined;
      w.reject(this.closed);
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
