import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError, UsageError } from '@thfc/format';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProxy, startProxy } from '../src/proxy.js';
import { testIo } from './helpers.js';

const body = Buffer.alloc(50_000, 3);
let upstream: Server;
let base: string;

beforeAll(async () => {
  upstream = createServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/store/`;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

/** Polls until `f` answers (the proxy writes its address once listening). */
async function until<T>(f: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('timed out');
}

describe('runProxy', () => {
  it('relays with the injected faults until aborted, then says what went through', async () => {
    const ac = new AbortController();
    const io = testIo(ac.signal);
    const rolls = [0.1, 0.9, 0.5, 0.9]; // request 1: 503; request 2: no error, the jitter draw, no reset
    let i = 0;
    const running = runProxy(
      { upstream: base, listen: '127.0.0.1:0', inject: 'latency=40ms,error-rate=0.5,reset-rate=0.5' },
      io,
      { random: () => rolls[i++ % rolls.length] as number },
    );
    const url = await until(() => /proxy (\S+) -> /.exec(io.err())?.[1]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/store\/$/);
    expect(io.err()).toContain(`-> ${base}, injecting latency=40ms,error-rate=0.5,reset-rate=0.5`);
    expect((await request(`${url}a`)).statusCode).toBe(503);
    const t = performance.now();
    const ok = await request(`${url}b`);
    expect(ok.statusCode).toBe(200);
    expect((await ok.body.arrayBuffer()).byteLength).toBe(body.length);
    expect(performance.now() - t).toBeGreaterThanOrEqual(35);
    ac.abort();
    expect(await running).toMatchObject({
      url,
      upstream: base,
      inject: 'latency=40ms,error-rate=0.5,reset-rate=0.5',
      requests: 2,
      errors: 1,
      resets: 0,
      bytes: body.length,
    });
  });

  it('without --inject it is a plain relay', async () => {
    const ac = new AbortController();
    const io = testIo(ac.signal);
    const running = runProxy({ upstream: base, listen: '127.0.0.1:0' }, io);
    const url = await until(() => /proxy (\S+) -> /.exec(io.err())?.[1]);
    expect(io.err()).toContain('injecting nothing');
    expect((await request(`${url}x`)).statusCode).toBe(200);
    ac.abort();
    expect((await running).inject).toBe('');
  });
});

describe('startProxy refuses bad options before listening', () => {
  it.each([
    [{ upstream: 'not a url' }, UsageError, /not a URL/],
    [{ upstream: 'ftp://m/' }, UsageError, /only http/],
    [{ upstream: 'http://m/', inject: 'latency=fast' }, InvalidArgumentError, /latency=fast: expected a duration/],
    [{ upstream: 'http://m/', listen: 'nowhere' }, UsageError, /bad --listen "nowhere"/],
  ] as const)('%o', async (o, type, message) => {
    const p = startProxy(o);
    await expect(p).rejects.toBeInstanceOf(type);
    await expect(p).rejects.toThrow(message);
  });

  it('an address in use is a usage error naming it', async () => {
    const taken = (upstream.address() as AddressInfo).port;
    const p = startProxy({ upstream: base, listen: `127.0.0.1:${taken}` });
    await expect(p).rejects.toBeInstanceOf(UsageError);
    await expect(p).rejects.toThrow(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`));
  });
});
