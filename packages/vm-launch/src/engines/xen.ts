import type { VmSpec } from '../vm-spec.js';

/**
 * An `xl` domain config for a Xen HVM guest on the same overlay (the seed's
 * "KNOPPIX/Xen" entry). HVM runs unmodified guests; direct kernel boot works
 * with the qemu-xen device model. Pure; `xl create -c FILE` runs it.
 */

/** Xen names HVM disks xvdX with PV drivers (sdX/hdX when only emulated): root=/dev/vda must be adjusted. */
export const XEN_DISK_VDEV = 'xvda';

export function xlConfig(spec: VmSpec, o: { disk: string; diskFormat: 'qcow2' | 'raw' }): string {
  const q = (s: string) => `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  const lines = [
    `# Xen HVM guest written by thfc-vm. Start it with: xl create -c <this file>`,
    `name = ${q(spec.name)}`,
    `type = "hvm"`,
    `memory = ${spec.memMiB}`,
    `vcpus = ${spec.cpus}`,
    // target= goes last: it may contain commas.
    `disk = [ ${q(`format=${o.diskFormat}, vdev=${XEN_DISK_VDEV}, access=rw, target=${o.disk}`)} ]`,
  ];
  if (spec.kernel !== undefined) lines.push(`kernel = ${q(spec.kernel)}`);
  if (spec.initrd !== undefined) lines.push(`ramdisk = ${q(spec.initrd)}`);
  if (spec.append !== undefined) lines.push(`cmdline = ${q(spec.append)}`);
  lines.push('serial = "pty"');
  if (spec.display.kind === 'vnc') {
    const [host, n] = spec.display.vnc.split(':');
    lines.push('vnc = 1', `vnclisten = ${q(host || '127.0.0.1')}`, `vncdisplay = ${Number(n)}`);
  } else if (spec.display.kind === 'window') lines.push('sdl = 1', 'vnc = 0');
  else lines.push('vnc = 0', 'nographic = 1');
  // Xen has no user-mode networking: a bridged NIC on the host's default Xen bridge.
  if (spec.net === 'user') lines.push('vif = [ "model=e1000, bridge=xenbr0" ]');
  lines.push('on_poweroff = "destroy"', 'on_reboot = "destroy"', 'on_crash = "destroy"');
  return `${lines.join('\n')}\n`;
}
