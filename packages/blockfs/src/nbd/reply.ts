import {
  BASE_ALLOCATION_ID,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
} from '@thfc/format';

/**
 * Encoders for transmission replies: simple replies, and the structured
 * reply chunks this server sends (data, error, block status). Each returns
 * the bytes to write; read data is written after its header, not copied.
 */

export function simpleReply(cookie: Buffer, error: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  cookie.copy(b, 8);
  return b;
}

function chunkHeader(cookie: Buffer, flags: number, type: number, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  cookie.copy(b, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

/** The final (and only) chunk of a read: the header, with the offset, to be followed by `length` data bytes. */
export function offsetDataHeader(cookie: Buffer, offset: number, length: number): Buffer {
  const b = Buffer.alloc(28);
  chunkHeader(cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE.OFFSET_DATA, 8 + length).copy(b);
  b.writeBigUInt64BE(BigInt(offset), 20);
  return b;
}

/** A final chunk saying only "done" (a command with no data that succeeded). */
export function doneChunk(cookie: Buffer): Buffer {
  return chunkHeader(cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE.NONE, 0);
}

/** A final error chunk: the errno and a line for a human. */
export function errorChunk(cookie: Buffer, error: number, message: string): Buffer {
  const text = Buffer.from(message.slice(0, 1024), 'utf8');
  const b = Buffer.alloc(20 + 6 + text.length);
  chunkHeader(cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE.ERROR, 6 + text.length).copy(b);
  b.writeUInt32BE(error, 20);
  b.writeUInt16BE(text.length, 24);
  text.copy(b, 26);
  return b;
}

export interface Extent {
  readonly length: number;
  readonly flags: number;
}

/** The final chunk answering BLOCK_STATUS for base:allocation. */
export function blockStatusChunk(cookie: Buffer, extents: readonly Extent[]): Buffer {
  const payload = 4 + 8 * extents.length;
  const b = Buffer.alloc(20 + payload);
  chunkHeader(cookie, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE.BLOCK_STATUS, payload).copy(b);
  b.writeUInt32BE(BASE_ALLOCATION_ID, 20);
  extents.forEach((e, i) => {
    b.writeUInt32BE(e.length, 24 + 8 * i);
    b.writeUInt32BE(e.flags, 28 + 8 * i);
  });
  return b;
}
