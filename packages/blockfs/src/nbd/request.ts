import { NBD_CMD, NBD_CMD_FLAG, NBD_E, NBD_REQUEST_MAGIC } from '@thfc/format';

/** One transmission request, as sent: 28 bytes, then a payload for a write. */
export interface NbdRequest {
  readonly flags: number;
  readonly type: number;
  /** Opaque to the server: echoed in every reply to this request. */
  readonly cookie: Buffer;
  readonly offset: number;
  readonly length: number;
}

export const REQUEST_HEADER_BYTES = 28;

/** A request header the session cannot follow (bad magic): the stream is lost, and so is the connection. */
export class NbdStreamError extends Error {}

export function parseRequest(header: Buffer): NbdRequest {
  const magic = header.readUInt32BE(0);
  if (magic !== NBD_REQUEST_MAGIC) throw new NbdStreamError(`bad request magic 0x${magic.toString(16)}`);
  const offset = header.readBigUInt64BE(16);
  return {
    flags: header.readUInt16BE(4),
    type: header.readUInt16BE(6),
    cookie: Buffer.from(header.subarray(8, 16)),
    // Past 2^53 it is out of range of any export anyway: kept unsafe-large so the range check refuses it.
    offset: offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset),
    length: header.readUInt32BE(24),
  };
}

/** Whether a request carries a payload the session must consume before anything else. */
export function hasPayload(r: NbdRequest): boolean {
  return r.type === NBD_CMD.WRITE;
}

/** What a session knows when it checks a request. */
export interface RequestContext {
  readonly size: number;
  readonly maxRequestBytes: number;
  readonly structured: boolean;
  readonly allocation: boolean;
}

/** The flags each command may carry (others are EINVAL). */
const ALLOWED_FLAGS: Record<number, number> = {
  [NBD_CMD.READ]: NBD_CMD_FLAG.FUA,
  [NBD_CMD.FLUSH]: 0,
  [NBD_CMD.CACHE]: 0,
  [NBD_CMD.BLOCK_STATUS]: NBD_CMD_FLAG.REQ_ONE,
};

/**
 * The errno a request is refused with, or 0 when it may run. Writes of any
 * kind get EPERM (the export is read-only); ranges past the end, lengths past
 * the limit and flags the command does not take get EINVAL.
 */
export function checkRequest(r: NbdRequest, ctx: RequestContext): number {
  switch (r.type) {
    case NBD_CMD.WRITE:
    case NBD_CMD.TRIM:
    case NBD_CMD.WRITE_ZEROES:
      return NBD_E.EPERM;
    case NBD_CMD.DISC:
      return 0;
    case NBD_CMD.READ:
    case NBD_CMD.FLUSH:
    case NBD_CMD.CACHE:
    case NBD_CMD.BLOCK_STATUS:
      break;
    default:
      return NBD_E.EINVAL;
  }
  if ((r.flags & ~(ALLOWED_FLAGS[r.type] ?? 0)) !== 0) return NBD_E.EINVAL;
  if (r.type === NBD_CMD.FLUSH) return r.offset === 0 && r.length === 0 ? 0 : NBD_E.EINVAL;
  if (r.offset + r.length > ctx.size) return NBD_E.EINVAL;
  if (r.type === NBD_CMD.READ && r.length > ctx.maxRequestBytes) return NBD_E.EINVAL;
  if (r.type === NBD_CMD.BLOCK_STATUS) {
    if (!ctx.structured || !ctx.allocation || r.length === 0) return NBD_E.EINVAL;
  }
  return 0;
}
