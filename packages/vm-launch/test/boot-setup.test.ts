import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseAccel } from '../src/accel.js';
import { setUpBoot, specFor } from '../src/boot-setup.js';
import { DEFAULT_CPUS, DEFAULT_DISK_BUS, DEFAULT_MEM_MIB } from '../src/vm-spec.js';
import { tempDir, testIo } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let disk: string;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
beforeEach(async () => {
  disk = join(dir, 'disk.img');
  await writeFile(disk, Buffer.alloc(4096));
});
afterEach(() => cleanup());

const tcg = chooseAccel('tcg', undefined);

describe('setUpBoot', () => {
  it('a disk file: no mount, no via; the state directory made absolute; thfc-vm defaults', async () => {
    const s = await setUpBoot({ image: disk, stateDir: 'state', serial: true }, testIo({ cwd: dir }));
    expect(s.target.kind).toBe('file');
    expect(s.via).toBeUndefined();
    expect(s.stateDir).toBe(join(dir, 'state'));
    expect(s.engine).toBe('qemu');
    expect(s.mountArgs).toEqual([]);
    const spec = specFor(s, '/run/overlay.qcow2', tcg, {}, '/run');
    expect(spec).toMatchObject({
      memMiB: DEFAULT_MEM_MIB,
      cpus: DEFAULT_CPUS,
      net: 'none',
      drive: { path: '/run/overlay.qcow2', format: 'qcow2', bus: DEFAULT_DISK_BUS, snapshot: false },
      // The serial console is logged for the boot timeout to watch.
      consoleLog: '/run/console.log',
    });
  });

  it("--snapshot boots the raw disk; --boot-timeout 0 leaves the console unwatched; VirtualBox drops the entry's kernel", async () => {
    const io = testIo({ cwd: dir });
    const snap = await setUpBoot({ image: disk, snapshot: true, serial: true, bootTimeoutSeconds: 0 }, io);
    expect(specFor(snap, disk, tcg, {}, '/run')).toMatchObject({
      drive: { format: 'raw', snapshot: true },
      consoleLog: undefined,
    });
    const vbox = await setUpBoot({ image: disk, engine: 'virtualbox', mem: 64, cpus: 3 }, io);
    expect([vbox.kernelLoc, vbox.initrdLoc, vbox.append]).toEqual([undefined, undefined, undefined]);
    expect(specFor(vbox, disk, tcg, {}, '/run')).toMatchObject({ memMiB: 64, cpus: 3, drive: { format: 'raw' } });
  });
});
