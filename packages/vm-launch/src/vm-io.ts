import type { HttpstorgedCommand } from './httpstorged.js';
import type { QemuTools } from './qemu.js';

/**
 * Everything a thfc-vm command may touch of the outside world. The CLI builds
 * it from `process`; tests build it from buffers and temp dirs. Commands never
 * read `process.*`.
 */
export interface VmIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Aborted on SIGINT/SIGTERM/SIGHUP: the guest is stopped and everything cleaned up. */
  readonly signal: AbortSignal;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /**
   * The guest's serial console: 'inherit' hands qemu this process's stdin and
   * stdout (the terminal); 'pipe' relays qemu's output to `stdout` (tests).
   */
  readonly guestConsole: 'inherit' | 'pipe';
  /** stdin is a terminal: the menu reads keys, and qemu's console is interactive. */
  readonly stdinIsTty: boolean;
  /** Puts the terminal in raw mode (the menu); absent when stdin is not a terminal. */
  readonly setRawMode?: ((raw: boolean) => void) | undefined;
  readonly tools: QemuTools;
  /** How to run httpstorged (resolved when first needed). */
  readonly httpstorged: () => HttpstorgedCommand;
  /** os.release(): the KVM probe's answer is cached per host kernel. */
  readonly hostKernel: string;
  readonly kvmDevice?: string | undefined;
  /** /dev/fuse unless told: --via auto mounts with FUSE only where it is usable. */
  readonly fuseDevice?: string | undefined;
  /** The user is root (FUSE mounts need it here); --via auto serves over NBD otherwise. */
  readonly root?: boolean | undefined;
  readonly now: () => Date;
}
