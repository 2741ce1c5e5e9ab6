import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EXIT, exitCodeOf, InputError, MirrorUnavailableError } from '@thfc/format';
import { ResponseTooLargeError } from '@thfc/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_BOOT_FILE_BYTES,
  downloadTo,
  localPath,
  MAX_LOCATION_BYTES,
  readLocation,
} from '../src/locations.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let server: Server;
let base: string;
const never = new AbortController().signal;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  server = createServer((req, res) => {
    if (req.url === '/catalog.json') res.end('{"ok":1}');
    else if (req.url === '/big') res.end(Buffer.alloc(3 * 1024 * 1024, 7));
    else if (req.url === '/slow') setTimeout(() => res.end('late'), 5_000);
    else if (req.url === '/boom') res.writeHead(503).end();
    else if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': 1_000_000 }).write(Buffer.alloc(1000, 7));
      setTimeout(() => res.destroy(), 20);
    } else if (req.url === '/moved') res.writeHead(301, { location: '/catalog.json' }).end();
    else if (req.url === '/endless') {
      // No Content-Length: only counting what arrives can stop it.
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    } else if (req.url === '/declares-huge') {
      res.writeHead(200, { 'content-length': 8 * 1024 ** 3 }).write(Buffer.alloc(1000, 7)); // and stalls
    } else if (req.url === '/huge') res.end(Buffer.alloc(MAX_LOCATION_BYTES + 1, 7));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await cleanup();
});

describe('locations', () => {
  it('reads http, file:// and paths', async () => {
    await writeFile(join(dir, 'c.json'), 'local');
    expect((await readLocation(`${base}/catalog.json`, never)).toString()).toBe('{"ok":1}');
    expect((await readLocation(pathToFileURL(join(dir, 'c.json')).href, never)).toString()).toBe('local');
    expect((await readLocation(join(dir, 'c.json'), never)).toString()).toBe('local');
    expect(localPath('http://x/y')).toBeUndefined();
    expect(localPath('file:///a%20b')).toBe('/a b');
  });

  it('404 is a missing input, 5xx and silence are an unavailable mirror, a missing file is a missing input', async () => {
    await expect(readLocation(`${base}/nope`, never)).rejects.toBeInstanceOf(InputError);
    await expect(readLocation(`${base}/boom`, never)).rejects.toBeInstanceOf(MirrorUnavailableError);
    await expect(readLocation(`${base}/slow`, never, 200)).rejects.toThrow(/no answer within 0.2 s/);
    await expect(readLocation(join(dir, 'none.json'), never)).rejects.toBeInstanceOf(InputError);
  });

  it('downloads to a file; an abort stops it', async () => {
    await downloadTo(`${base}/big`, join(dir, 'big'), never);
    expect((await readFile(join(dir, 'big'))).length).toBe(3 * 1024 * 1024);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop')), 50);
    await expect(downloadTo(`${base}/slow`, join(dir, 'slow'), ac.signal)).rejects.toThrow(/stop/);
  });

  it('a local write that fails is named as the local file, not blamed on the mirror', async () => {
    const e = await downloadTo(`${base}/big`, join(dir, 'no-such-dir', 'vmlinuz'), never).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toBe(`${join(dir, 'no-such-dir', 'vmlinuz')}: no such file or directory`);
  });

  it('a download cut short leaves neither the file nor a temp file', async () => {
    const sub = join(dir, 'cut');
    await mkdir(sub);
    const e = await downloadTo(`${base}/cut`, join(sub, 'vmlinuz'), never).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MirrorUnavailableError); // the mirror's fault, not the local file's
    expect((e as Error).message).not.toContain('vmlinuz');
    expect(await readdir(sub)).toEqual([]);
  });

  it('follows a redirect, as fetch() did, and refuses a body over MAX_LOCATION_BYTES', async () => {
    expect((await readLocation(`${base}/moved`, never)).toString()).toBe('{"ok":1}');
    await expect(readLocation(`${base}/huge`, never)).rejects.toBeInstanceOf(ResponseTooLargeError);
  });

  it('a kernel or initrd over the cap is ResponseTooLargeError (exit 4), declared or sent, and leaves no file', async () => {
    const sub = join(dir, 'capped');
    await mkdir(sub);
    for (const route of ['endless', 'declares-huge']) {
      const e = await downloadTo(`${base}/${route}`, join(sub, 'vmlinuz'), never, { maxBytes: 1024 * 1024 }).catch(
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(ResponseTooLargeError);
      expect(e).toMatchObject({ maxBytes: 1024 * 1024 });
      expect(exitCodeOf(e)).toBe(EXIT.DATA);
      expect(await readdir(sub)).toEqual([]);
    }
    // Exactly the cap is taken.
    await downloadTo(`${base}/big`, join(sub, 'initrd'), never, { maxBytes: 3 * 1024 * 1024 });
    expect(await readdir(sub)).toEqual(['initrd']);
    expect(DEFAULT_MAX_BOOT_FILE_BYTES).toBe(1024 ** 3);
  });
});
