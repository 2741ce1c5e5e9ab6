import { describe, expect, it } from 'vitest';
import {
  escapeOptionValue,
  isKvmFailure,
  kvmFailureLine,
  overlayCreateArgs,
  probeArgs,
  qemuArgs,
} from '../src/qemu-args.js';
import type { VmSpec } from '../src/vm-spec.js';

const base: VmSpec = {
  name: 'thfc-guest',
  drive: { path: '/run/ov.qcow2', format: 'qcow2', bus: 'virtio', snapshot: false },
  accel: 'tcg',
  memMiB: 256,
  cpus: 2,
  display: { kind: 'serial' },
  net: 'none',
};

/** The value following `flag` in an argument vector. */
const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe('qemuArgs', () => {
  it('serial console, TCG, overlay drive: the command a headless boot runs', () => {
    const a = qemuArgs({ ...base, kernel: '/k', initrd: '/i', append: 'console=ttyS0 root=/dev/vda' });
    expect(a).toEqual([
      '-name',
      'thfc-guest',
      '-machine',
      'pc',
      '-accel',
      'tcg',
      '-cpu',
      'max',
      '-m',
      '256',
      '-smp',
      '2',
      '-nodefaults',
      '-no-user-config',
      '-no-reboot',
      '-display',
      'none',
      '-serial',
      'stdio',
      '-kernel',
      '/k',
      '-initrd',
      '/i',
      '-append',
      'console=ttyS0 root=/dev/vda',
      '-drive',
      'file=/run/ov.qcow2,format=qcow2,if=virtio',
    ]);
  });

  it('KVM uses the host CPU', () => {
    const a = qemuArgs({ ...base, accel: 'kvm' });
    expect(after(a, '-accel')).toBe('kvm');
    expect(after(a, '-cpu')).toBe('host');
  });

  it('serial console with a console log (the boot timeout watches it): a stdio chardev that also logs', () => {
    const a = qemuArgs({ ...base, consoleLog: '/run/thfc/run-1/con,sole.log' });
    expect(after(a, '-chardev')).toBe('stdio,id=console,logfile=/run/thfc/run-1/con,,sole.log');
    expect(after(a, '-serial')).toBe('chardev:console');
    expect(a.filter((x) => x === '-serial')).toHaveLength(1);
  });

  it('VNC: a VGA screen on the VNC display and no serial unless asked', () => {
    const a = qemuArgs({ ...base, display: { kind: 'vnc', vnc: ':3', serial: false } });
    expect(after(a, '-vnc')).toBe(':3');
    expect(a).toContain('-vga');
    expect(a).not.toContain('-serial');
    const both = qemuArgs({ ...base, display: { kind: 'vnc', vnc: ':3', serial: true } });
    expect(after(both, '-serial')).toBe('stdio');
  });

  it('a window keeps qemu`s default display', () => {
    const a = qemuArgs({ ...base, display: { kind: 'window', serial: false } });
    expect(a).not.toContain('-display');
    expect(a).toContain('-vga');
  });

  it('snapshot, IDE, user networking, and commas in paths', () => {
    const a = qemuArgs({
      ...base,
      drive: { path: '/mnt/a,b/disk', format: 'raw', bus: 'ide', snapshot: true },
      net: 'user',
    });
    expect(after(a, '-drive')).toBe('file=/mnt/a,,b/disk,format=raw,if=ide,snapshot=on');
    expect(after(a, '-netdev')).toBe('user,id=net0');
    expect(after(a, '-device')).toBe('virtio-net-pci,netdev=net0');
  });

  it('without a kernel there is no -kernel/-append (the disk boots its own loader)', () => {
    const a = qemuArgs(base);
    expect(a).not.toContain('-kernel');
    expect(a).not.toContain('-append');
  });
});

describe('overlay and probe arguments', () => {
  it('qemu-img create names the raw backing format (never probed: a raw image could pose as qcow2)', () => {
    expect(overlayCreateArgs('/mnt/guest', '/run/ov.qcow2')).toEqual([
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      '/mnt/guest',
      '-F',
      'raw',
      '/run/ov.qcow2',
    ]);
  });

  it('the probe boots a read-only virtio disk and can exit through isa-debug-exit', () => {
    const a = probeArgs('kvm', '/s/p,1.img');
    expect(a).toContain('isa-debug-exit,iobase=0xf4,iosize=0x04');
    expect(after(a, '-drive')).toBe('file=/s/p,,1.img,format=raw,if=virtio,readonly=on');
    expect(after(a, '-accel')).toBe('kvm');
  });

  it('escapes commas only', () => {
    expect(escapeOptionValue('a,b,,c d')).toBe('a,,b,,,,c d');
  });
});

describe('KVM failure detection', () => {
  it.each([
    'KVM internal error. Suberror: 1',
    'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69',
    "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.",
    'Could not access KVM kernel module: No such file or directory',
    'qemu-system-x86_64: failed to initialize kvm: Permission denied',
  ])('recognises: %s', (line) => {
    expect(isKvmFailure(`warning: something\n${line}\nextra data[0]: 0x1`)).toBe(true);
    expect(kvmFailureLine(`warning: something\n${line}\n`)).toBe(line);
  });

  it.each([
    'qemu-system-x86_64: -drive file=x: Could not open x: No such file or directory',
    'qemu-system-x86_64: terminating on signal 15 from pid 1',
    '',
  ])('does not blame KVM for: %s', (line) => {
    expect(isKvmFailure(line)).toBe(false);
  });
});
