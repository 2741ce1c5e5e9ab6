import { describe, expect, it } from 'vitest';
import { buildPlan, downloadsFor, runLayout } from '../src/boot-plan.js';
import type { Target } from '../src/boot-target.js';
import type { VmSpec } from '../src/vm-spec.js';

const index: Target = {
  kind: 'index',
  source: 'index',
  location: 'http://m/pub/deb.idx',
  name: 'deb',
  diskName: 'deb',
};
const file: Target = { kind: 'file', source: 'file', location: '/img/deb.img', name: 'deb', diskName: 'deb.img' };
const now = new Date('2026-01-02T03:04:05Z');
const spec = (path: string): VmSpec => ({
  name: 'thfc-deb',
  drive: { path, format: 'qcow2', bus: 'virtio', snapshot: false },
  accel: 'tcg',
  memMiB: 256,
  cpus: 1,
  display: { kind: 'serial' },
  net: 'none',
});
const tcg = { accel: 'tcg' as const, reason: 'TCG forced', retryWithTcg: false };
const line = (s: { program: string; args: readonly string[] }) => [s.program, ...s.args].join(' ');

describe('runLayout', () => {
  it('puts the mount and the overlay in the run directory; a kept overlay under STATE/overlays', () => {
    expect(runLayout('/s/run-1', index, '/s', {}, now)).toEqual({
      mountpoint: '/s/run-1/mnt',
      socket: '/s/run-1/nbd.sock',
      overlay: '/s/run-1/overlay.qcow2',
      rawDisk: '/s/run-1/mnt/deb',
      via: 'fuse',
    });
    expect(runLayout('/s/run-1', file, '/s', { keepOverlay: true }, now)).toMatchObject({
      overlay: '/s/overlays/deb-2026-01-02T03-04-05-000Z.qcow2',
      rawDisk: '/img/deb.img',
    });
  });
});

describe('runLayout and buildPlan with --via nbd', () => {
  it('serves the index on a socket in the run directory; the overlay is backed by the export, with reconnect-delay', () => {
    const layout = runLayout('/s/run-1', index, '/s', { via: 'nbd' }, now);
    expect(JSON.parse(layout.rawDisk.replace(/^json:/, ''))).toEqual({
      driver: 'raw',
      file: { driver: 'nbd', server: { type: 'unix', path: '/s/run-1/nbd.sock' }, export: '', 'reconnect-delay': 60 },
    });
    const plan = buildPlan('qemu', {
      spec: spec(layout.overlay),
      target: index,
      layout,
      accel: tcg,
      mountArgs: ['--cache', '/c'],
      downloads: [],
      keepOverlay: false,
      snapshot: false,
      vboxMajor: undefined,
    });
    expect(plan.prepare.map(line)).toEqual([
      'mkdir -p /s/run-1',
      'httpstorged nbd --socket /s/run-1/nbd.sock http://m/pub/deb.idx --cache /c',
      `qemu-img create -q -f qcow2 -b ${layout.rawDisk} -F raw /s/run-1/overlay.qcow2`,
    ]);
    expect(plan.cleanup.map(line).some((l) => l.startsWith('httpstorged umount'))).toBe(false);
  });
});

describe('buildPlan', () => {
  const layout = runLayout('/s/run-1', index, '/s', {}, now);
  const base = {
    target: index,
    layout,
    accel: tcg,
    mountArgs: ['--offline'],
    downloads: [],
    keepOverlay: false,
    snapshot: false,
    vboxMajor: 7,
  };

  it('qemu: mount, overlay, qemu, then remove the overlay, unmount, remove the run dir', () => {
    const p = buildPlan('qemu', { ...base, spec: spec(layout.overlay) });
    expect(p.prepare.map(line)).toEqual([
      'mkdir -p /s/run-1/mnt',
      'httpstorged /s/run-1/mnt http://m/pub/deb.idx --offline',
      'qemu-img create -q -f qcow2 -b /s/run-1/mnt/deb -F raw /s/run-1/overlay.qcow2',
    ]);
    expect(line(p.run)).toMatch(
      /^qemu-system-x86_64 -name thfc-deb .* -drive file=\/s\/run-1\/overlay\.qcow2,format=qcow2,if=virtio$/,
    );
    expect(p.cleanup.map(line)).toEqual([
      'rm -f /s/run-1/overlay.qcow2',
      'httpstorged umount /s/run-1/mnt',
      'rm -rf /s/run-1',
    ]);
    expect(p.notes).toContain('accelerator TCG forced');
  });

  it('xen: the xl config on the overlay as a file, xl create -c, xl destroy', () => {
    const p = buildPlan('xen', { ...base, spec: spec(layout.overlay) });
    expect(p.files[0]?.path).toBe('/s/run-1/thfc-deb.cfg');
    expect(p.files[0]?.content).toContain('target=/s/run-1/overlay.qcow2');
    expect(line(p.run)).toBe('xl create -c /s/run-1/thfc-deb.cfg');
    expect(p.teardown.map(line)).toEqual(['xl destroy thfc-deb']);
  });

  it('virtualbox: no qemu overlay (VirtualBox keeps its own), the VMDK points at the mounted file', () => {
    const p = buildPlan('virtualbox', {
      ...base,
      spec: { ...spec(layout.rawDisk), drive: { ...spec('').drive, path: layout.rawDisk, format: 'raw' } },
    });
    expect(p.prepare.map(line).join('\n')).not.toContain('qemu-img');
    expect(p.setup.map(line).join('\n')).toContain('RawDrive=/s/run-1/mnt/deb');
  });

  it('shows the downloads thfc-vm does itself as curl commands; local files need none', () => {
    expect(
      downloadsFor('http://m/boot/vmlinux', '/local/initrd', {
        kernel: '/s/run-1/kernel',
        initrd: '/local/initrd',
      }).map(line),
    ).toEqual(['curl -fsSL -o /s/run-1/kernel http://m/boot/vmlinux']);
  });
});
