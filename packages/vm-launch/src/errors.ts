import { ThfcError } from '@thfc/format';

/**
 * thfc-vm's own errors. Everything else (usage, missing input, bad data, I/O)
 * uses the shared classes of @thfc/format so that one exit-code table holds.
 */

/** A tool the run needs is not installed: qemu-system-x86_64, qemu-img, xl, VBoxManage, httpstorged. */
export class EngineMissingError extends ThfcError {
  readonly code = 'ERR_ENGINE_MISSING';
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
