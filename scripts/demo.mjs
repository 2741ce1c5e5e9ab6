// The main job (run through scripts/demo.sh, which installs and builds first): build a bootable sample
// image, pack and sign it, serve it with a local mirror, mount it over HTTP, check it byte for byte,
// and boot it under qemu from the mount. Each step runs the real command a user would type and prints it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { buildGuestImage, guestKernelArgs } from '../test/support/guest-image.mjs';

const root = resolve(import.meta.dirname, '..');
const work = resolve(process.env.THFC_DEMO_DIR ?? join(root, '.demo'));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const cleanups = [];

function step(title) {
  process.stdout.write(`\n== ${title}\n`);
}

function show(cmd, args) {
  process.stdout.write(`$ ${[cmd, ...args].map((a) => (/[\s']/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
}

class DemoFailed extends Error {}

function run(cmd, args) {
  show(cmd, args);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new DemoFailed(`${cmd} ${args[0] ?? ''} failed (exit ${r.status ?? r.signal})`);
}

async function cleanup() {
  for (const c of cleanups.splice(0).reverse()) await c();
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitHealthy(url) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}healthz`);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new DemoFailed(`the mirror at ${url} did not come up`);
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    process.stderr.write(`demo: ${sig}: cleaning up\n`);
    await cleanup();
    process.exit(130);
  });
}

try {
  await main();
} catch (e) {
  process.stderr.write(`demo: FAILED: ${e instanceof DemoFailed ? e.message : (e?.stack ?? e)}\n`);
  await cleanup();
  process.exit(1);
}

async function main() {
  rmSync(join(work, 'store'), { recursive: true, force: true });
  rmSync(join(work, 'cache'), { recursive: true, force: true });
  mkdirSync(work, { recursive: true });

  step('1. build a bootable sample disk image (Debian kernel + busybox on ext4, from Debian packages)');
  const guest = await buildGuestImage({ log: (line) => process.stdout.write(`  ${line}\n`) });
  process.stdout.write(`disk ${guest.disk} (${guest.diskBytes} bytes), kernel ${guest.versions.kernelRelease}\n`);

  step('2. make a publisher key (once) and pack the image into a signed block store');
  const key = join(work, 'publisher.key');
  if (!existsSync(key)) run(bin('thfc-pack'), ['keygen', key]);
  const store = join(work, 'store');
  run(bin('thfc-pack'), ['pack', guest.disk, '--store', store, '--name', 'sample', '--sign', key]);
  run(bin('thfc-pack'), ['verify', store]);

  step('3. serve the store with a local mirror');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const mirrorArgs = ['serve', store, '--listen', `127.0.0.1:${port}`, '--no-access-log'];
  show(bin('thfc-mirror'), mirrorArgs);
  const mirror = spawn(bin('thfc-mirror'), mirrorArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
  cleanups.push(async () => {
    mirror.kill('SIGTERM');
    await new Promise((r) => (mirror.exitCode === null ? mirror.once('exit', r) : r()));
  });
  await waitHealthy(url);

  step('4. mount it over HTTP, trusting only the publisher key, and compare it byte for byte');
  const mnt = join(work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  spawnSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' });
  run(bin('httpstorged'), [
    mnt,
    `${url}sample.idx`,
    '--trust',
    `${key}.pub`,
    '--cache',
    join(work, 'cache'),
    '--log',
    join(work, 'httpstorged.log'),
  ]);
  cleanups.push(async () => {
    spawnSync(bin('httpstorged'), ['umount', mnt], { stdio: 'inherit' });
  });
  run('cmp', [guest.disk, join(mnt, 'sample')]);
  process.stdout.write(`${join(mnt, 'sample')} is byte-identical to ${guest.disk}\n`);

  step('5. boot it under qemu from the mount (copy-on-write overlay; TCG when KVM does not really work)');
  const bootArgs = ['boot', join(mnt, 'sample'), ...guestKernelArgs(guest)];
  show(bin('thfc-vm'), bootArgs);
  const boot = spawnSync(bin('thfc-vm'), bootArgs, { stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 });
  const serial = boot.stdout?.toString() ?? '';
  process.stdout.write(
    `${serial
      .split('\n')
      .filter((l) => l.includes('THFC-'))
      .join('\n')}\n`,
  );
  if (boot.status !== 0 || !serial.includes(guest.markerLine)) {
    throw new DemoFailed(`the guest did not print "${guest.markerLine}" (thfc-vm exit ${boot.status})`);
  }

  step('6. what the mount fetched');
  run(bin('httpstorged'), ['stats', mnt]);

  await cleanup();
  process.stdout.write(
    '\ndemo: OK: packed, signed, served, mounted, verified byte for byte, and booted from the mount\n',
  );
}
