import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { encodeProfile, InputError, MirrorUnavailableError } from '@thfc/format';
import { tempDir } from '@thfc/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndexLocation } from '../src/index-loader.js';
import { loadProfile } from '../src/profile-loader.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const PROFILE = encodeProfile('img', DIGEST, ['01'.repeat(20)]);
let server: Server;
let base: string;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('thfc-profile-loader-'));
  await writeFile(join(dir, 'img.profile'), PROFILE);
  server = createServer((req, res) => {
    if (req.url === '/img.profile') res.end(PROFILE);
    else if (req.url === '/boom') res.writeHead(503).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await cleanup();
});

const http = (): IndexLocation => ({ kind: 'http', location: `${base}img.idx`, base });
const file = (): IndexLocation => ({ kind: 'file', location: join(dir, 'img.idx'), base: dir });
const load = (explicit: string | undefined, location: IndexLocation, name = 'img') =>
  loadProfile(explicit, location, name, {}, { timeoutMs: 2_000 });

describe('loadProfile', () => {
  it('finds NAME.profile beside an http or a file index, and --prefetch names one', async () => {
    expect((await load(undefined, http()))?.blocks).toEqual(['01'.repeat(20)]);
    expect((await load(undefined, file()))?.blocks).toEqual(['01'.repeat(20)]);
    expect((await load(`${base}img.profile`, file(), 'other'))?.image).toBe('img');
  });

  it('an index without a profile beside it has none (404, no file)', async () => {
    expect(await load(undefined, http(), 'other')).toBeUndefined();
    expect(await load(undefined, file(), 'other')).toBeUndefined();
  });

  it('a profile named by --prefetch must be there, and every failure is typed', async () => {
    const notFound = await load(`${base}nope.profile`, http()).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(MirrorUnavailableError);
    expect((notFound as Error).message).toMatch(/nope\.profile.*HTTP 404/);
    await expect(load(`${base}boom`, http())).rejects.toBeInstanceOf(MirrorUnavailableError);
    const missing = await load(join(dir, 'nope.profile'), file()).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InputError);
    expect((missing as Error).message).toBe(`${join(dir, 'nope.profile')}: no such file or directory`);
  });
});
