import { InvalidArgumentError } from '@thfc/format';

/**
 * What to boot and how: the one value the qemu argument builder, the other
 * engines' config writers and --dry-run all read. Pure data, no I/O.
 */

export type Accel = 'kvm' | 'tcg';
/** `auto`: KVM when the cached probe says it really runs guests, else TCG (qemu-knoppix.sh's choice). */
export type AccelRequest = 'auto' | Accel;
export type DiskBus = 'virtio' | 'ide';
export type Net = 'none' | 'user';

/**
 * Where the guest's screen and console go.
 * - serial: no display; the serial console is this terminal (stdio).
 * - vnc: a VNC server on `vnc` (":1" = port 5901); the console is on the VGA screen, and also on stdio with `serial`.
 * - window: qemu's own window (a graphical session is present); the console on stdio with `serial`.
 */
export type Display =
  | { readonly kind: 'serial' }
  | { readonly kind: 'vnc'; readonly vnc: string; readonly serial: boolean }
  | { readonly kind: 'window'; readonly serial: boolean };

export interface Drive {
  /** The file qemu opens: the qcow2 overlay, or the raw image itself with `snapshot`. */
  readonly path: string;
  readonly format: 'qcow2' | 'raw';
  readonly bus: DiskBus;
  /** qemu keeps writes in a temporary file and drops them when it exits. */
  readonly snapshot: boolean;
}

export interface VmSpec {
  /** Shown as the qemu window title / Xen domain / VirtualBox VM name. */
  readonly name: string;
  readonly drive: Drive;
  readonly accel: Accel;
  readonly memMiB: number;
  readonly cpus: number;
  readonly kernel?: string | undefined;
  readonly initrd?: string | undefined;
  readonly append?: string | undefined;
  readonly display: Display;
  readonly net: Net;
  /**
   * With the serial console on this terminal: qemu also writes the console to
   * this file (`-chardev stdio,…,logfile=`), which the boot timeout watches.
   */
  readonly consoleLog?: string | undefined;
}

/** The original's live OSes ran in 512 MiB; today's minimal Debian boots in 256, a desktop wants more (--mem). */
export const DEFAULT_MEM_MIB = 512;
/** One vCPU: under TCG more vCPUs mostly cost host CPU (the dev/CI machine has 2 cores shared with the FUSE daemon). */
export const DEFAULT_CPUS = 1;
/** virtio is what Linux guests of the last 15 years boot from fastest; `ide` is for guests without virtio drivers. */
export const DEFAULT_DISK_BUS: DiskBus = 'virtio';
/** Below this Linux does not get through early boot. */
export const MIN_MEM_MIB = 16;

/**
 * Picks the display: --vnc wins; else --serial; else a window when a
 * graphical session is there ($DISPLAY or $WAYLAND_DISPLAY), else the serial
 * console on this terminal.
 */
export function chooseDisplay(o: {
  vnc?: string | undefined;
  serial?: boolean | undefined;
  graphical: boolean;
}): Display {
  if (o.vnc !== undefined) return { kind: 'vnc', vnc: parseVncDisplay(o.vnc), serial: !!o.serial };
  if (o.serial || !o.graphical) return { kind: 'serial' };
  return { kind: 'window', serial: false };
}

/** ":N" or "HOST:N", as qemu's -vnc takes it. */
export function parseVncDisplay(text: string): string {
  if (!/^[A-Za-z0-9.[\]-]*:\d{1,4}$/.test(text))
    throw new InvalidArgumentError(`--vnc wants a display such as :1 (port 5901) or 127.0.0.1:1, not "${text}"`);
  return text;
}

export function parseAccel(text: string): AccelRequest {
  if (text === 'auto' || text === 'kvm' || text === 'tcg') return text;
  throw new InvalidArgumentError(`--accel must be kvm, tcg or auto, not "${text}"`);
}

export function parseNet(text: string): Net {
  if (text === 'user' || text === 'none') return text;
  throw new InvalidArgumentError(`--net must be user or none, not "${text}"`);
}

export function parseDiskBus(text: string): DiskBus {
  if (text === 'virtio' || text === 'ide') return text;
  throw new InvalidArgumentError(`--disk-bus must be virtio or ide, not "${text}"`);
}

/** A VM name every engine accepts: letters, digits, dot, dash, underscore. */
export function vmName(imageName: string): string {
  const cleaned = imageName.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
  return `thfc-${cleaned || 'guest'}`;
}
