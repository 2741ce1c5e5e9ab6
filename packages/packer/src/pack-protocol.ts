import type { Codec } from '@thfc/format';

/** Messages between the packer and its workers. */
export interface PackTask {
  readonly seq: number;
  readonly buffer: ArrayBuffer;
  readonly length: number;
}

export type PackTaskResult =
  | { readonly seq: number; readonly zero: true }
  | {
      readonly seq: number;
      readonly zero: false;
      readonly id: string;
      readonly codec: Codec;
      readonly storedSize: number;
      /** The store already held this block: nothing to write. */
      readonly existing: boolean;
      /** Stored bytes to write, present when `existing` is false. */
      readonly stored?: Uint8Array;
    }
  | { readonly seq: number; readonly error: string };
