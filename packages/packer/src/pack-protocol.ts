import type { Codec } from '@thfc/format';

/**
 * Messages between the packer and its workers. A task's buffer is
 * transferred to the worker and comes back in the result, so the packer can
 * read the next block into it: in the steady state no block buffer is
 * allocated (see BlockBufferPool).
 */
export interface PackTask {
  readonly seq: number;
  readonly buffer: ArrayBuffer;
  readonly length: number;
}

export type PackTaskResult =
  | { readonly seq: number; readonly zero: true; readonly buffer: ArrayBuffer }
  | {
      readonly seq: number;
      readonly zero: false;
      readonly id: string;
      readonly codec: Codec;
      readonly storedSize: number;
      /** The store already held this block: nothing to write. */
      readonly existing: boolean;
      /**
       * The task's buffer, back. When `existing` is false its first
       * `storedSize` bytes are the stored bytes to write (compressed in
       * place of the block, or the block itself when kept raw).
       */
      readonly buffer: ArrayBuffer;
    }
  /** The buffer is lost with the error: the packer stops anyway. */
  | { readonly seq: number; readonly error: string };
