import { ThfcError } from '@thfc/format';
import { VM_EXIT } from './exit-codes.js';

/**
 * thfc-vm's own errors, each with its exit code (VM_EXIT). Everything else
 * (usage, missing input, bad data, I/O) uses the shared classes of @thfc/format.
 */

/** A tool the run needs is not installed: qemu-system-x86_64, qemu-img, xl, VBoxManage, httpstorged. */
export class EngineMissingError extends ThfcError {
  readonly code = 'ERR_ENGINE_MISSING';
  readonly exitCode: number = VM_EXIT.ENGINE_MISSING;
  constructor(
    readonly tool: string,
    hint: string,
  ) {
    super(`${tool} not found: ${hint}`);
  }
}

/**
 * httpstorged could not mount the image. `exitCode` is httpstorged's own
 * (same table: 3 input, 4 bad data or untrusted index, 5 mirrors unreachable),
 * passed through so that scripts see why.
 */
export class MountFailedError extends ThfcError {
  readonly code = 'ERR_MOUNT_FAILED';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
