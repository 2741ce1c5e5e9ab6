import { describe, expect, it } from 'vitest';
import { xlConfig } from '../../src/engines/xen.js';
import type { VmSpec } from '../../src/vm-spec.js';

const spec: VmSpec = {
  name: 'thfc-debian',
  drive: { path: '/r/ov.qcow2', format: 'qcow2', bus: 'virtio', snapshot: false },
  accel: 'kvm',
  memMiB: 768,
  cpus: 2,
  kernel: '/r/kernel',
  initrd: '/r/initrd',
  append: 'console=ttyS0 root=/dev/xvda "quoted"',
  display: { kind: 'serial' },
  net: 'user',
};

describe('xlConfig', () => {
  it('an HVM domain on the overlay, with direct kernel boot, destroyed when it stops', () => {
    const cfg = xlConfig(spec, { disk: '/r/ov.qcow2', diskFormat: 'qcow2' });
    expect(cfg).toContain('type = "hvm"');
    expect(cfg).toContain('memory = 768');
    expect(cfg).toContain('vcpus = 2');
    expect(cfg).toContain('disk = [ "format=qcow2, vdev=xvda, access=rw, target=/r/ov.qcow2" ]');
    expect(cfg).toContain('kernel = "/r/kernel"');
    expect(cfg).toContain('ramdisk = "/r/initrd"');
    expect(cfg).toContain('cmdline = "console=ttyS0 root=/dev/xvda \\"quoted\\""');
    expect(cfg).toContain('serial = "pty"');
    expect(cfg).toContain('vif = [ "model=e1000, bridge=xenbr0" ]');
    for (const ev of ['on_poweroff', 'on_reboot', 'on_crash']) expect(cfg).toContain(`${ev} = "destroy"`);
  });

  it('VNC and no network', () => {
    const cfg = xlConfig(
      {
        ...spec,
        display: { kind: 'vnc', vnc: ':4', serial: false },
        net: 'none',
        kernel: undefined,
        append: undefined,
      },
      { disk: '/d', diskFormat: 'raw' },
    );
    expect(cfg).toContain('vnc = 1');
    expect(cfg).toContain('vnclisten = "127.0.0.1"');
    expect(cfg).toContain('vncdisplay = 4');
    expect(cfg).not.toContain('vif');
    expect(cfg).not.toContain('kernel');
  });
});
