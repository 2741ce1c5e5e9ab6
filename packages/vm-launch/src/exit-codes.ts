import { EXIT } from '@thfc/format';

/**
 * thfc-vm exit codes: the shared thfc table (@thfc/format EXIT) plus two of
 * its own. A boot's code tells what ended it; docs/thfc-vm.md has the table.
 */
export const VM_EXIT = {
  ...EXIT,
  /** qemu failed: it exited non-zero, or died of a signal thfc-vm did not send (crash, bad arguments, KVM and TCG both failed). */
  VM_FAILED: 6,
  /** A needed tool is not installed (sysexits EX_UNAVAILABLE). */
  ENGINE_MISSING: 69,
} as const;

/** How a run of the guest ended. */
export type Outcome =
  /** qemu exited 0: the guest powered off (or rebooted: qemu runs with -no-reboot). */
  | 'powered-off'
  /** Ctrl-C, SIGTERM or SIGHUP: thfc-vm stopped qemu. */
  | 'interrupted'
  /** qemu exited non-zero or died of a signal thfc-vm did not send. */
  | 'failed';

export function exitCodeOfOutcome(outcome: Outcome): number {
  switch (outcome) {
    case 'powered-off':
      return VM_EXIT.OK;
    case 'interrupted':
      return VM_EXIT.INTERRUPTED;
    case 'failed':
      return VM_EXIT.VM_FAILED;
  }
}
