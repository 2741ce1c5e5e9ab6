import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage } from './support/images.js';
import { BIN, node, tempDir } from './support/processes.js';
import { StaticServer } from './support/static-server.js';
import { expectNothingLeft, runVm, stopLeftovers } from './support/vm.js';

/**
 * Xen and VirtualBox: their real-run paths against stand-ins for `xl` and
 * `VBoxManage` (shell scripts on PATH that log what they are asked and answer
 * like the real tools). No Xen or VirtualBox exists on the CI machine; what
 * this proves is the sequence of commands, the files they get, and the
 * cleanup. docs/thfc-vm.md says what is and is not tested.
 */
let work: string;
let cleanupWork: () => Promise<void>;
let server: StaticServer;
let fakes: string;
let disk: string;
let state: string;

async function fake(name: string, body: string): Promise<void> {
  await writeFile(join(fakes, name), `#!/bin/sh\necho "$*" >> ${join(fakes, `${name}.log`)}\n${body}\n`);
  await chmod(join(fakes, name), 0o755);
}
const log = async (name: string) => (await readFile(join(fakes, `${name}.log`), 'utf8')).trim().split('\n');

beforeAll(async () => {
  ({ dir: work, cleanup: cleanupWork } = await tempDir('thfc-vm-engines-'));
  fakes = join(work, 'bin');
  await mkdir(fakes);
  disk = join(work, 'small.img');
  await makeImage(disk, [
    ['text', 2],
    ['zero', 2],
  ]);
  const r = await node(BIN.pack, ['pack', disk, '--store', join(work, 'store'), '--json']);
  expect(r.code, r.stderr).toBe(0);
  server = await new StaticServer(join(work, 'store')).start();
  state = join(work, 'state');
  // xl create -c CFG: show the config as the domain's "console", then the domain ends.
  await fake('xl', 'if [ "$1" = create ]; then cat "$3"; echo XEN-DOMAIN-RAN; fi; exit 0');
  await fake(
    'VBoxManage',
    `case "$1" in --version) echo 7.0.20r163906;; showvminfo) echo 'VMState="poweroff"';; createmedium) test -f "$(echo "$*" | sed 's/.*RawDrive=//')" || exit 5;; esac; exit 0`,
  );
}, 120_000);

afterAll(async () => {
  if (work) await stopLeftovers(work);
  await server?.kill();
  await cleanupWork?.();
});

const env = () => ({ PATH: `${fakes}:${process.env.PATH}` });

describe('other engines, run for real against stand-in tools', () => {
  it('xen: mounts over HTTP, writes the xl config for the overlay, runs `xl create -c`, destroys and cleans up', async () => {
    const r = await runVm(
      [
        '--state-dir',
        state,
        'boot',
        `${server.url}small.idx`,
        '--engine',
        'xen',
        '--mem',
        '300',
        '--cache',
        join(work, 'c1'),
      ],
      {
        env: env(),
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('XEN-DOMAIN-RAN');
    expect(r.stdout).toMatch(/disk = \[ "format=qcow2, vdev=xvda, access=rw, target=\S+\/run-\w+\/overlay\.qcow2" \]/);
    expect(r.stdout).toContain('memory = 300');
    const calls = await log('xl');
    expect(calls[0]).toMatch(/^create -c \S+\/run-\w+\/thfc-small\.cfg$/);
    expect(calls[1]).toBe('destroy thfc-small');
    await expectNothingLeft(state);
  }, 60_000);

  it('virtualbox: raw-disk VMDK on the mounted file, immutable attach, start, wait, and a teardown that never deletes the image', async () => {
    const r = await runVm(
      ['--state-dir', state, 'boot', `${server.url}small.idx`, '--engine', 'virtualbox', '--cache', join(work, 'c2')],
      {
        env: env(),
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const calls = (await log('VBoxManage')).map((l) => l.split(' ')[0]);
    expect(calls).toEqual([
      '--version',
      'createvm',
      'modifyvm',
      'createmedium',
      'storagectl',
      'storageattach',
      'startvm',
      'showvminfo',
      'controlvm',
      'storageattach',
      'closemedium',
      'unregistervm',
    ]);
    expect((await log('VBoxManage')).find((l) => l.startsWith('createmedium'))).toMatch(
      /RawDrive=\S+\/run-\w+\/mnt\/small$/,
    );
    await expectNothingLeft(state);
    expect((await readdir(join(work, 'store'))).sort()).toContain('small.idx');
  }, 60_000);
});
