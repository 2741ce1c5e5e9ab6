import { describe, expect, it } from 'vitest';
import { virtualBoxPlan } from '../../src/engines/virtualbox.js';
import type { VmSpec } from '../../src/vm-spec.js';

const spec: VmSpec = {
  name: 'thfc-debian',
  drive: { path: '/mnt/debian', format: 'raw', bus: 'virtio', snapshot: false },
  accel: 'kvm',
  memMiB: 1024,
  cpus: 2,
  display: { kind: 'serial' },
  net: 'user',
};
const line = (s: { program: string; args: readonly string[] }) => [s.program, ...s.args].join(' ');

describe('virtualBoxPlan', () => {
  it('VirtualBox 7: a RawDisk VMDK on the mounted file, attached immutable', () => {
    const p = virtualBoxPlan(spec, { rawDisk: '/mnt/debian', runDir: '/r', major: 7 });
    const lines = p.setup.map(line);
    expect(lines[0]).toBe('VBoxManage createvm --name thfc-debian --ostype Linux_64 --basefolder /r --register');
    expect(lines[1]).toContain('--memory 1024 --cpus 2');
    expect(lines[1]).toContain('--nic1 nat');
    expect(lines).toContain(
      'VBoxManage createmedium disk --filename /r/thfc-debian.vmdk --format VMDK --variant RawDisk --property RawDrive=/mnt/debian',
    );
    expect(lines.at(-1)).toMatch(/storageattach .* --medium \/r\/thfc-debian\.vmdk --mtype immutable$/);
    expect(line(p.run)).toBe('VBoxManage startvm thfc-debian --type headless');
  });

  it('VirtualBox 6: internalcommands createrawvmdk', () => {
    const p = virtualBoxPlan(spec, { rawDisk: '/mnt/debian', runDir: '/r', major: 6 });
    expect(p.setup.map(line)).toContain(
      'VBoxManage internalcommands createrawvmdk -filename /r/thfc-debian.vmdk -rawdisk /mnt/debian',
    );
  });

  it('teardown detaches and closes the medium before deleting the VM, so the image itself is never deleted', () => {
    const t = virtualBoxPlan(spec, { rawDisk: '/mnt/debian', runDir: '/r', major: 7 }).teardown.map(line);
    const detach = t.findIndex((l) => l.includes('--medium none'));
    const close = t.findIndex((l) => l.startsWith('VBoxManage closemedium'));
    const del = t.findIndex((l) => l.includes('unregistervm'));
    expect(detach).toBeGreaterThanOrEqual(0);
    expect(detach).toBeLessThan(close);
    expect(close).toBeLessThan(del);
    expect(t.join('\n')).not.toContain('/mnt/debian');
  });
});
