import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, node, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';
import {
  BOOT_TIMEOUT_MS,
  expectNothingLeft,
  type GuestStore,
  guestBootArgs,
  guestStore,
  runVm,
  stopLeftovers,
} from './support/vm.js';

/**
 * Boot profiles through thfc-vm, end to end with the real test guest (slow:
 * two TCG boots): a boot over HTTP records the blocks the guest touched, the
 * publisher checks, signs and publishes them beside the index, and the next
 * cold boot (another cache) replays them at mount, before the guest asks.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let g: GuestStore;
let server: StaticServer;
let state: string;
let key: string;

const boot = (cache: string, extra: string[]) =>
  runVm([
    '--state-dir',
    state,
    'boot',
    `${server.url}guest.idx`,
    '--cache',
    join(work, cache),
    '--trust',
    `${key}.pub`,
    '--accel',
    'tcg',
    '--snapshot',
    ...guestBootArgs(g),
    ...extra,
  ]);

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-vm-profile-'));
  g = await guestStore(work);
  key = join(work, 'publisher.key');
  expect((await node(BIN.pack, ['keygen', key])).code).toBe(0);
  const signed = await node(BIN.pack, ['sign', join(g.store, 'guest.idx'), '--key', key]);
  expect(signed.code, signed.stderr).toBe(0);
  server = await new StaticServer(g.store).start();
  state = join(work, 'state');
}, 600_000);

afterAll(async () => {
  if (work) await stopLeftovers(work);
  await server?.kill();
  await cleanupWork?.();
});

describe('thfc-vm boot profiles (slow: real guests)', () => {
  it(
    'record with --record-profile → thfc-pack profile add → a cold boot replays it: hits, marker, nothing left',
    async () => {
      const profile = join(work, 'guest.profile');
      const first = await boot('cache-record', ['--record-profile', profile, '--report', join(work, 'record.json')]);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(g.guest.markerLine);
      const recorded = JSON.parse(await readFile(join(work, 'record.json'), 'utf8'));
      expect(recorded.profile.recorded).toBe(profile);
      const blocks = recorded.profile.blocks as number;
      expect(blocks).toBeGreaterThan(0);
      // Every block the guest read was fetched, and those are what was recorded (zero blocks are never fetched).
      expect(blocks).toBeLessThanOrEqual(recorded.mount.uniqueBlocks);
      expect(first.stderr).toContain(`recorded a boot profile of ${blocks} blocks to ${profile}`);
      expect(recorded.mount.prefetch).toBeNull(); // nothing published yet
      await expectNothingLeft(state);

      const add = await node(BIN.pack, ['profile', 'add', join(g.store, 'guest.idx'), profile, '--key', key, '--json']);
      expect(add.code, add.stderr).toBe(0);
      expect(JSON.parse(add.stdout)).toMatchObject({ path: join(g.store, 'guest.profile'), blocks });

      const replay = await boot('cache-replay', ['--report', join(work, 'replay.json')]);
      expect(replay.code, replay.stderr).toBe(0);
      expect(replay.stdout).toContain(g.guest.markerLine);
      expect(server.paths).toContain('/guest.profile');
      const rep = JSON.parse(await readFile(join(work, 'replay.json'), 'utf8'));
      expect(rep.mount.prefetch).toMatchObject({
        source: 'guest.profile', // the published one, beside the index
        blocks,
        fetched: blocks,
        pending: 0,
        failed: 0,
        done: true,
      });
      // The same guest reads the same blocks: (almost) every one was fetched before it asked.
      expect(rep.mount.prefetch.hit).toBeGreaterThanOrEqual(Math.ceil(blocks * 0.8));
      expect(rep.mount.readErrors).toBe(0);
      expect(replay.stderr).toMatch(new RegExp(`boot profile of ${blocks} blocks from guest\\.profile: \\d+ hit`));
      await expectNothingLeft(state);
    },
    3 * BOOT_TIMEOUT_MS,
  );
});
