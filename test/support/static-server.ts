import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join, normalize } from 'node:path';

/** What to do with one request; `undefined` serves the file. */
export type Fault =
  | { kind: 'status'; status: number }
  | { kind: 'reset' }
  | { kind: 'corrupt' }
  | { kind: 'delay'; ms: number }
  | undefined;

/**
 * A real HTTP server on 127.0.0.1 (port 0) serving a store directory as
 * static files, as any web server would, with a hook to inject faults per
 * request. Stands in for a mirror in end-to-end tests until thfc-mirror is used.
 */
export class StaticServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  requests = 0;
  readonly paths: string[] = [];
  fault: (path: string, n: number) => Fault = () => undefined;

  constructor(readonly root: string) {}

  get url(): string {
    const a = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}/`;
  }

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server?.listen(port, '127.0.0.1', r));
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] as string);
    const n = ++this.requests;
    this.paths.push(path);
    const file = join(this.root, normalize(path));
    if (!file.startsWith(this.root)) {
      res.writeHead(400).end();
      return;
    }
    const f = this.fault(path, n);
    if (f?.kind === 'status') {
      res.writeHead(f.status).end();
      return;
    }
    if (f?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (f?.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms));
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': st.size, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (f?.kind === 'corrupt') {
      const { readFile } = await import('node:fs/promises');
      const b = await readFile(file);
      b[b.length >> 1] = (b[b.length >> 1] as number) ^ 0xff;
      res.end(b);
      return;
    }
    createReadStream(file).pipe(res);
  }

  /** Stops listening and cuts every open connection, as a crashed server would. */
  async kill(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
  }
}
