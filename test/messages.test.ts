import dgram from 'node:dgram';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { isMounted, TestMount } from './support/mounts.js';
import { BIN, node, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';
import { VM } from './support/vm.js';

/**
 * Messages that misled (issue 15 §2), each through the real CLI: what the
 * user did, and the one line they now get.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let server: StaticServer;

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-messages-'));
  const store = join(work, 'store');
  const img = join(work, 'small.img');
  await makeImage(img, [['text', 2]]);
  expect((await node(BIN.pack, ['pack', img, '--store', store])).code).toBe(0);
  server = await new StaticServer(store).start();
}, 60_000);

afterAll(async () => {
  await server?.kill();
  await cleanupWork?.();
});

describe('httpstorged', () => {
  it('a non-empty mountpoint is refused up front, saying so and what to do, exit 2', async () => {
    const mnt = join(work, 'full');
    await mkdir(mnt);
    await writeFile(join(mnt, 'notes.txt'), 'mine\n');
    const r = await node(BIN.httpstorged, [mnt, `${server.url}small.idx`, '--cache', join(work, 'c-full')], {
      timeoutMs: 30_000,
    });
    expect(r.stderr).toBe(
      `httpstorged: mountpoint ${mnt} is not empty (1 entry, such as notes.txt); mount on an empty directory, or move what is there out of it\n`,
    );
    expect(r.code).toBe(2);
    expect(await isMounted(mnt)).toBe(false);
  }, 60_000);

  it('`httpstorged mount MNT URL` is the mount itself, not a mount on a directory named "mount"', async () => {
    const mnt = join(work, 'alias');
    await mkdir(mnt);
    const { mount, result } = await TestMount.start('mount', join(work, 'alias.log'), [
      mnt,
      `${server.url}small.idx`,
      '--cache',
      join(work, 'c-alias'),
    ]);
    try {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(await isMounted(mnt)).toBe(true);
    } finally {
      await new TestMount(mnt, mount.log).stop();
    }
  }, 60_000);

  it('--pool: a DNS server that answers REFUSED is said not to serve that pool, not to be unavailable', async () => {
    // A real UDP server on loopback that refuses every question: the query echoed back, QR set, RCODE 5.
    const socket = dgram.createSocket('udp4');
    socket.on('message', (query, from) => {
      const reply = Buffer.from(query);
      reply[2] = 0x80 | ((query[2] as number) & 0x79);
      reply[3] = 5;
      socket.send(reply, from.port, from.address);
    });
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    const dns = `127.0.0.1:${socket.address().port}`;
    try {
      const mnt = join(work, 'pool');
      await mkdir(mnt);
      const r = await node(BIN.httpstorged, [mnt, 'small', '--pool', 'pool.test', '--dns', dns], { timeoutMs: 30_000 });
      expect(r.stderr).toBe(
        `httpstorged: dns ${dns} does not serve pool pool.test (it answered REFUSED); check the --pool name, or give --dns a server of that zone\n`,
      );
      expect(r.code).toBe(5);
    } finally {
      socket.close();
    }
  }, 60_000);
});

describe('thfc-vm boot', () => {
  it('a text file as the disk: a warning up front, then a boot timeout instead of a silent hang (exit 6)', async () => {
    const disk = join(work, 'notes.img');
    await writeFile(disk, 'shopping: milk, eggs\n'.repeat(100));
    const r = await node(
      VM.cli,
      ['boot', disk, '--no-kvm', '--serial', '--boot-timeout', '3', '--state-dir', join(work, 'vm-state')],
      { timeoutMs: 60_000 },
    );
    const lines = r.stderr.trim().split('\n');
    expect(lines).toContain(
      `thfc-vm: warning: ${disk} has no boot sector (no 0x55AA at byte 510) and no --kernel is given: the guest will likely find nothing to boot`,
    );
    expect(lines.at(-1)).toBe(
      'thfc-vm: boot timeout: the guest wrote nothing to its serial console in 3 s, stopped (nothing bootable on the disk? no --kernel? --boot-timeout 0 waits for ever)',
    );
    expect(r.code).toBe(6);
    expect(r.ms).toBeLessThan(30_000);
  }, 90_000);
});
