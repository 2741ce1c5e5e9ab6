import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RedisRegistry } from '@thfc/mirror';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from '../packages/mirror/test/dns/dig.js';
import { Daemon, waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { readRange, TestMount } from './support/mounts.js';
import { BIN, node, ROOT, run, sha256, tempDir } from './support/processes.js';
import { freePort, startRedis, type TestRedis } from './support/redis-server.js';

/**
 * DNS-Balance end to end: a real Redis, three mirrors on 127.0.0.1–3 in two
 * regions heartbeating into it, `thfc-mirror dns` answering from it, `dig`
 * as the client from different source addresses, and an httpstorged mount
 * with `--pool` reading through a mirror crash and a mirror shutdown.
 * The commands are the ones docker/compose.yaml runs.
 */

const ZONE = 'thfc.test';
const MIRROR_CLI = join(ROOT, 'packages/mirror/dist/cli.js');
/** The heartbeat's defaults (packages/mirror/src/heartbeat.ts): 2 s interval, TTL 3 intervals. */
const HEARTBEAT_TTL_MS = 6_000;
/** run-dns re-reads the registry every 500 ms (registry-snapshot.ts). */
const REFRESH_MS = 500;

interface Mirror {
  name: string;
  host: string;
  region: string;
  url: string;
  daemon: Daemon;
}

let work: string;
let cleanupWork: () => Promise<void>;
let image: string;
let store: string;
let redis: TestRedis;
let registry: RedisRegistry;
let dnsDaemon: Daemon;
let dnsAddress: { host: string; port: number };
const mirrors: Mirror[] = [];
const mounts: TestMount[] = [];

async function startMirror(name: string, host: string, region: string): Promise<Mirror> {
  const port = await freePort(host);
  const url = `http://${host}:${port}/`;
  const daemon = new Daemon(name, process.execPath, [
    MIRROR_CLI,
    'serve',
    store,
    '--listen',
    `${host}:${port}`,
    '--region',
    region,
    '--advertise',
    url,
    '--redis',
    redis.url,
  ]);
  await waitUntil(daemon, `${name} serving and registered`, async () => {
    const res = await fetch(`${url}small.idx`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.ok && (await registry.list()).some((r) => r.url === url);
  });
  return { name, host, region, url, daemon };
}

/** The SRV answer as ports in order, asked by dig from `source`. */
async function srvPorts(source: string): Promise<number[]> {
  const out = await dig(dnsAddress, ['+short', `_thfc._tcp.${ZONE}`, 'SRV'], { source });
  if (out.code !== 0) throw new Error(`dig: ${out.stderr}${out.stdout}`);
  return out.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.split(' ')[2]));
}
const portOf = (m: Mirror) => Number(new URL(m.url).port);

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-dns-balance-'));
  image = join(work, 'small.img');
  await makeImage(image, [
    ['text', 8],
    ['random', 16],
    ['zero', 4],
    ['text', 8],
  ]);
  store = join(work, 'store');
  const packed = await node(BIN.pack, ['pack', image, '--store', store]);
  expect(packed.code, packed.stderr).toBe(0);

  redis = await startRedis();
  registry = await RedisRegistry.connect({}, { url: redis.url });
  const networks = join(work, 'networks');
  await writeFile(networks, '127.0.0.2/32  jp us\n127.0.0.3/32  us jp\ndefault       jp us\n');

  mirrors.push(await startMirror('mirror-jp1', '127.0.0.1', 'jp'));
  mirrors.push(await startMirror('mirror-jp2', '127.0.0.2', 'jp'));
  mirrors.push(await startMirror('mirror-us1', '127.0.0.3', 'us'));

  dnsAddress = { host: '127.0.0.1', port: await freePort() };
  dnsDaemon = new Daemon('dns', process.execPath, [
    MIRROR_CLI,
    'dns',
    '--zone',
    ZONE,
    '--listen',
    `${dnsAddress.host}:${dnsAddress.port}`,
    '--redis',
    redis.url,
    '--networks',
    networks,
  ]);
  await waitUntil(
    dnsDaemon,
    'dns answering with three mirrors',
    async () => (await srvPorts('127.0.0.1')).length === 3,
  );
}, 120_000);

afterAll(async () => {
  for (const m of mounts) await m.stop();
  await Promise.all(mirrors.map((m) => m.daemon.stop()));
  await dnsDaemon?.stop();
  await registry?.close();
  await redis?.stop();
  await cleanupWork?.();
});

describe('DNS-Balance end to end', () => {
  it('a real Redis holds three mirrors on 127.0.0.x in two regions', async () => {
    const listed = (await registry.list()).map((r) => [r.url, r.region, r.health]).sort();
    expect(listed).toEqual(mirrors.map((m) => [m.url, m.region, 'ok']).sort());
  });

  it('clients querying from 127.0.0.2 and 127.0.0.3 get the orders the networks file gives', async () => {
    const [jp1, jp2, us1] = mirrors as [Mirror, Mirror, Mirror];
    const jp = new Set([portOf(jp1), portOf(jp2)]);
    const fromJp = await srvPorts('127.0.0.2');
    const fromUs = await srvPorts('127.0.0.3');
    // 127.0.0.2/32 prefers jp, then us; 127.0.0.3/32 prefers us, then jp.
    expect(new Set(fromJp.slice(0, 2))).toEqual(jp);
    expect(fromJp[2]).toBe(portOf(us1));
    expect(fromUs[0]).toBe(portOf(us1));
    expect(new Set(fromUs.slice(1))).toEqual(jp);
    // TXT carries the URLs in the same order; A the addresses.
    const txt = await dig(dnsAddress, ['+short', ZONE, 'TXT'], { source: '127.0.0.3' });
    expect(txt.stdout.trim().split(' ')[0]).toBe(`"${us1.url}"`);
    const a = await dig(dnsAddress, ['+short', ZONE, 'A'], { source: '127.0.0.2' });
    expect(a.stdout.trim().split('\n').at(-1)).toBe('127.0.0.3');
    // Over TCP too, and the same client gets the same order again.
    const tcp = await dig(dnsAddress, ['+tcp', '+short', `_thfc._tcp.${ZONE}`, 'SRV'], { source: '127.0.0.2' });
    expect(
      tcp.stdout
        .trim()
        .split('\n')
        .map((l) => Number(l.split(' ')[2])),
    ).toEqual(fromJp);
  });

  it('a crashed mirror leaves DNS within one heartbeat TTL, a stopped one at once; the mounted client reads on with no errors', async () => {
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const { mount, result } = await TestMount.start(mnt, join(work, 'mount.log'), [
      'small.idx',
      '--pool',
      ZONE,
      '--dns',
      `${dnsAddress.host}:${dnsAddress.port}`,
      '--cache',
      join(work, 'cache'),
      '--readahead',
      '0',
    ]);
    mounts.push(mount);
    expect(result.code, result.stderr).toBe(0);
    const original = await readFile(image);
    const MiB = 1024 * 1024;
    const check = async (from: number, to: number) => {
      const r = await readRange(join(mnt, 'small'), from, to - from);
      expect(r.ok ? '' : r.error).toBe('');
      if (r.ok) expect(Buffer.compare(r.bytes, original.subarray(from, to))).toBe(0);
    };

    // The client asks from 127.0.0.1: the default rule, jp first. It starts on the first mirror DNS named.
    await check(0, 6 * MiB);
    const first = (await mount.stats()).images[0]?.mirrors as { url: string; requests: number }[];
    const victim = mirrors.find((m) => m.url === first[0]?.url) as Mirror;
    expect(victim.region).toBe('jp');
    expect(first[0]?.requests).toBeGreaterThan(0);

    // Crash it: no unregister, so its record must expire.
    const crashed = Date.now();
    await victim.daemon.stop({ crash: true });
    await check(6 * MiB, 20 * MiB); // fails over at once: the dead mirror refuses connections
    await waitUntil(
      undefined,
      `${victim.name} leaving DNS`,
      async () => !(await srvPorts('127.0.0.1')).includes(portOf(victim)),
      15_000,
    );
    const left = Date.now() - crashed;
    expect(left, `left DNS ${left} ms after the crash`).toBeLessThanOrEqual(HEARTBEAT_TTL_MS + REFRESH_MS + 1_000);

    // A clean stop unregisters: gone within a refresh or two.
    const other = mirrors.find((m) => m.region === 'jp' && m !== victim) as Mirror;
    const stopped = Date.now();
    await other.daemon.stop();
    await waitUntil(
      undefined,
      `${other.name} leaving DNS`,
      async () => !(await srvPorts('127.0.0.1')).includes(portOf(other)),
      5_000,
    );
    expect(Date.now() - stopped).toBeLessThanOrEqual(3 * REFRESH_MS + 1_000);
    expect(await srvPorts('127.0.0.1')).toEqual([portOf(mirrors[2] as Mirror)]);

    // Only the us mirror is left: the rest of the image comes from it, with no read errors.
    await check(20 * MiB, original.length);
    expect(await sha256(join(mnt, 'small'))).toBe(await sha256(image));
    // The client re-resolved when its TTL ran out and now lists only the live mirror.
    await waitUntil(
      undefined,
      'the client re-resolving the pool',
      async () => {
        const ms = (await mount.stats()).images[0]?.mirrors as { url: string }[];
        return ms.length === 1 && ms[0]?.url === mirrors[2]?.url;
      },
      15_000,
    );
    const status = await mount.stats();
    expect(status.images[0]?.readErrors).toBe(0);
    // The failover did meet the crashed mirror, and moved on without a read error.
    expect(await mount.logText()).toMatch(new RegExp(`FAULT mirror ${victim.url} failed block`));
    expect(await mount.logText()).toMatch(
      new RegExp(`pool ${ZONE.replace('.', '\\.')}: mirrors now ${mirrors[2]?.url}`),
    );
  }, 120_000);

  it('dig and the pool see the DNS server refuse names outside its zone', async () => {
    const out = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(dnsAddress.port),
      '+tries=1',
      '+time=2',
      'example.org',
      'A',
    ]);
    expect(out.stdout).toMatch(/status: REFUSED/);
  });
});
