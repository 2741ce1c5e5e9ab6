import type { Accel, VmSpec } from './vm-spec.js';

/**
 * qemu and qemu-img argument building: pure functions over a VmSpec, so that
 * what --dry-run prints is exactly what runs. `qemu.ts` is the only file that
 * spawns what these describe.
 */

export const QEMU_SYSTEM = 'qemu-system-x86_64';
export const QEMU_IMG = 'qemu-img';

/**
 * TCG emulates "max": every feature it can, so guests built for x86-64-v2/v3
 * (RHEL 9, recent Ubuntu) boot; qemu's default "qemu64" lacks SSE4.2 and POPCNT.
 */
export const DEFAULT_TCG_CPU = 'max';
/** With KVM the guest sees the host CPU: no emulation cost, and no feature the hardware lacks. */
export const DEFAULT_KVM_CPU = 'host';

/** `,` separates -drive options; a literal comma in a value is doubled. */
export function escapeOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

export function accelArgs(accel: Accel): string[] {
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', DEFAULT_KVM_CPU] : ['-accel', 'tcg', '-cpu', DEFAULT_TCG_CPU];
}

/** The full argument vector for qemu-system-x86_64 (without the program name). */
export function qemuArgs(spec: VmSpec): string[] {
  const args = ['-name', spec.name, '-machine', 'pc', ...accelArgs(spec.accel)];
  args.push('-m', String(spec.memMiB), '-smp', String(spec.cpus));
  // No default devices or config files: what runs is what is listed here.
  args.push('-nodefaults', '-no-user-config');
  // A reboot ends the run like a power-off: the guest is back at its menu entry, not looping.
  args.push('-no-reboot');
  const d = spec.display;
  if (d.kind === 'serial' && spec.consoleLog !== undefined) {
    const log = `logfile=${escapeOptionValue(spec.consoleLog)}`;
    args.push('-display', 'none', '-chardev', `stdio,id=console,${log}`, '-serial', 'chardev:console');
  } else if (d.kind === 'serial') args.push('-display', 'none', '-serial', 'stdio');
  else {
    args.push('-vga', 'std');
    if (d.kind === 'vnc') args.push('-display', 'none', '-vnc', d.vnc);
    if (d.serial) args.push('-serial', 'stdio');
  }
  if (spec.kernel !== undefined) args.push('-kernel', spec.kernel);
  if (spec.initrd !== undefined) args.push('-initrd', spec.initrd);
  if (spec.append !== undefined) args.push('-append', spec.append);
  const drive = [
    `file=${escapeOptionValue(spec.drive.path)}`,
    `format=${spec.drive.format}`,
    `if=${spec.drive.bus}`,
    ...(spec.drive.snapshot ? ['snapshot=on'] : []),
  ];
  args.push('-drive', drive.join(','));
  if (spec.net === 'user') args.push('-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0');
  return args;
}

/** `qemu-img create` for a copy-on-write overlay over a raw backing file (which is only ever read). */
export function overlayCreateArgs(backing: string, overlay: string): string[] {
  return ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'raw', overlay];
}

/**
 * A KVM run that failed because of KVM rather than the guest: "KVM internal
 * error … emulation failure" (qemu then stops the guest and hangs), an
 * assertion in kvm.c, a refused MSR, or no usable /dev/kvm.
 */
export function isKvmFailure(stderr: string): boolean {
  return /KVM internal error|kvm[\w/.]*\.c:\d+|failed to set MSR|failed to initialize kvm|Could not access KVM|\bkvm\b.*\b(?:fail|error)/i.test(
    stderr,
  );
}

/** Same, for the one line qemu prints that says so, to quote it. */
export function kvmFailureLine(stderr: string): string | undefined {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .find((l) => isKvmFailure(l));
}

/**
 * The KVM probe: the tiny probe guest (kvm-probe-guest.ts) as a 1 MiB virtio
 * disk, booted by SeaBIOS, with isa-debug-exit so it ends qemu when done.
 */
export function probeArgs(accel: Accel, image: string): string[] {
  return [
    '-machine',
    'pc',
    ...accelArgs(accel),
    '-m',
    '16',
    '-nodefaults',
    '-no-user-config',
    '-no-reboot',
    '-display',
    'none',
    '-serial',
    'stdio',
    '-device',
    'isa-debug-exit,iobase=0xf4,iosize=0x04',
    '-drive',
    `file=${escapeOptionValue(image)},format=raw,if=virtio,readonly=on`,
  ];
}
