import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, waitUntil } from './support/daemon.js';
import { makeImage } from './support/images.js';
import { isMounted } from './support/mounts.js';
import { BIN, execFileP, node, ROOT, run, tempDir } from './support/processes.js';

/**
 * contrib/systemd/: the units pass `systemd-analyze verify`, stop the way a
 * FUSE daemon needs, and the daemons they start do tell a Type=notify
 * service's NOTIFY_SOCKET that they are ready (received here by a small
 * datagram listener, as systemd would).
 */
const UNITS = join(ROOT, 'contrib/systemd');
let work: string;
let cleanup: () => Promise<void>;
const daemons: Daemon[] = [];

/** Receives sd_notify datagrams on `path` and prints each as one line; closes any fd passed (the barrier). */
const LISTENER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % 4])
            for fd in fds:
                os.close(fd)
    print(msg.decode().replace("\\n", " "), flush=True)
`;

async function notifyListener(name: string): Promise<{ socket: string; listener: Daemon }> {
  const socket = join(work, `${name}.notify`);
  const listener = new Daemon(`notify ${name}`, 'python3', ['-c', LISTENER, socket]);
  daemons.push(listener);
  await waitUntil(listener, 'the notify listener', async () => listener.output.includes('bound'));
  return { socket, listener };
}

beforeAll(async () => {
  ({ dir: work, cleanup } = await tempDir('thfc-systemd-'));
});

afterAll(async () => {
  for (const d of daemons) await d.stop();
  await cleanup?.();
});

describe('contrib/systemd units', () => {
  it('pass systemd-analyze verify', async (ctx) => {
    if ((await run('sh', ['-c', 'command -v systemd-analyze'])).code !== 0)
      return ctx.skip('systemd-analyze is not installed (package systemd)');
    // The units name the installed commands (/usr/local/bin, where npm -g puts them); verify checks that each
    // ExecStart exists, so the copies checked here point at this tree's. Man pages are checked by
    // man-pages.test.ts (verify would look for installed ones), and a template is checked as an instance.
    const dir = join(work, 'units');
    await mkdir(dir);
    const names: string[] = [];
    for (const f of await readdir(UNITS)) {
      const text = (await readFile(join(UNITS, f), 'utf8'))
        .replaceAll('/usr/local/bin/httpstorged', BIN.httpstorged)
        .replaceAll('/usr/local/bin/thfc-mirror', join(ROOT, 'packages/mirror/dist/cli.js'));
      const name = f.replace('@.service', '@srv-vm.service');
      await writeFile(join(dir, name), text);
      names.push(join(dir, name));
    }
    expect(names.map((n) => n.split('/').at(-1)).sort()).toEqual([
      'httpstorged@srv-vm.service',
      'thfc-mirror-dns.service',
      'thfc-mirror.service',
    ]);
    const r = await run('systemd-analyze', ['verify', '--man=no', ...names], { timeoutMs: 60_000 });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.code).toBe(0);
  });

  it('are Type=notify with NotifyAccess=all, and stop with KillMode=mixed (never the whole group first)', async () => {
    for (const f of await readdir(UNITS)) {
      const text = await readFile(join(UNITS, f), 'utf8');
      const set = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
      expect(set('Type'), f).toEqual(['notify']);
      expect(set('NotifyAccess'), f).toEqual(['all']);
      expect(set('KillMode'), f).toEqual(['mixed']);
    }
    const mount = await readFile(join(UNITS, 'httpstorged@.service'), 'utf8');
    expect(mount).toMatch(/^ExecStopPost=-\/bin\/fusermount -u -z %f$/m);
    expect(mount).not.toMatch(/^(PrivateTmp|PrivateMounts|ProtectSystem|ProtectHome)=/m);
  });
});

describe('readiness on NOTIFY_SOCKET', () => {
  it('thfc-mirror serve says READY=1 with its own pid as MAINPID once listening', async () => {
    const store = join(work, 'store-serve');
    await mkdir(store);
    const { socket, listener } = await notifyListener('serve');
    const serve = new Daemon(
      'serve',
      process.execPath,
      [join(ROOT, 'packages/mirror/dist/cli.js'), 'serve', store, '--listen', '127.0.0.1:0'],
      { NOTIFY_SOCKET: socket },
    );
    daemons.push(serve);
    await waitUntil(serve, 'READY=1', async () => listener.output.includes('READY=1'));
    expect(listener.output).toContain(`MAINPID=${serve.pid}`);
    expect(serve.output).toMatch(/serving /);
    expect(serve.output).not.toMatch(/could not tell systemd/);
  });

  it('httpstorged -f says READY=1 once mounted (the mount is there when it arrives)', async () => {
    const img = join(work, 'ready.img');
    await makeImage(img, [['text', 2]]);
    const store = join(work, 'store-mount');
    const packed = await node(BIN.pack, ['pack', img, '--store', store]);
    expect(packed.code, packed.stderr).toBe(0);
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const { socket, listener } = await notifyListener('mount');
    const mount = new Daemon(
      'httpstorged',
      process.execPath,
      [BIN.httpstorged, '-f', mnt, join(store, 'ready.idx'), '--cache', join(work, 'cache')],
      { NOTIFY_SOCKET: socket },
    );
    daemons.push(mount);
    try {
      await waitUntil(mount, 'READY=1', async () => listener.output.includes('READY=1'));
      expect(await isMounted(mnt)).toBe(true);
      expect(listener.output).toContain(`MAINPID=${mount.pid}`);
    } finally {
      await mount.stop({ graceMs: 15_000 });
      await execFileP('fusermount', ['-u', '-z', mnt]).catch(() => {});
    }
  }, 60_000);
});
