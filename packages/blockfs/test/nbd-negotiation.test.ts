import { describe, expect, it } from 'vitest';
import {
  answerOption,
  type ExportCatalog,
  type ExportInfo,
  newNegotiation,
  TRANSMISSION_FLAGS,
} from '../src/nbd/negotiation.js';

const disk: ExportInfo = { name: 'disk', size: 1 << 20, preferredBlockSize: 4096, description: 'a disk' };
const catalog: ExportCatalog = { find: (n) => (n === '' || n === 'disk' ? disk : undefined), list: () => [disk] };
const limits = { maxRequestBytes: 1 << 25 };

const str32 = (s: string) => {
  const b = Buffer.from(s);
  const l = Buffer.alloc(4);
  l.writeUInt32BE(b.length);
  return Buffer.concat([l, b]);
};
const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
/** The reply type of each encoded option reply. */
const types = (replies: readonly Buffer[]) => replies.map((r) => r.readUInt32BE(12));

describe('answerOption', () => {
  it('GO on a known export: INFO_EXPORT (size, read-only flags), what was asked, ACK, then transmission', () => {
    const s = newNegotiation(true);
    const out = answerOption(7, Buffer.concat([str32('disk'), u16(2), u16(3), u16(2)]), s, catalog, limits);
    expect(out.next).toBe('go');
    expect(types(out.replies)).toEqual([3, 3, 3, 1]);
    const exp = out.replies[0]?.subarray(20) as Buffer;
    expect([exp.readUInt16BE(0), Number(exp.readBigUInt64BE(2)), exp.readUInt16BE(10)]).toEqual([
      0,
      1 << 20,
      TRANSMISSION_FLAGS,
    ]);
    expect(TRANSMISSION_FLAGS & 2).toBe(2);
    expect(out.replies[1]?.subarray(22).toString()).toBe('a disk');
    const sizes = out.replies[2]?.subarray(22) as Buffer;
    expect([sizes.readUInt32BE(0), sizes.readUInt32BE(4), sizes.readUInt32BE(8)]).toEqual([1, 4096, 1 << 25]);
  });

  it('the empty name is the default export; an unknown one is ERR_UNKNOWN and haggling goes on', () => {
    const s = newNegotiation(true);
    expect(answerOption(6, Buffer.concat([str32(''), u16(0)]), s, catalog, limits).next).toBe('continue');
    const out = answerOption(7, Buffer.concat([str32('nope'), u16(0)]), s, catalog, limits);
    expect([out.next, types(out.replies)]).toEqual(['continue', [0x80000006]]);
  });

  it('malformed data is ERR_INVALID: short, trailing, an over-long string, data on LIST', () => {
    const s = newNegotiation(true);
    for (const [opt, data] of [
      [7, Buffer.from([0, 0, 0, 9, 1])],
      [7, Buffer.concat([str32('disk'), u16(0), Buffer.from([1])])],
      [7, Buffer.concat([str32('x'.repeat(5000)), u16(0)])],
      [3, Buffer.from([1])],
      [8, Buffer.from([1])],
    ] as const) {
      expect(types(answerOption(opt, data, s, catalog, limits).replies), `${opt}`).toEqual([0x80000003]);
    }
  });

  it('base:allocation: refused before structured replies, then listed, selected, and on for GO of that export', () => {
    const s = newNegotiation(true);
    const query = Buffer.concat([str32('disk'), u32(1), str32('base:allocation')]);
    expect(types(answerOption(10, query, s, catalog, limits).replies)).toEqual([0x80000003]);
    answerOption(8, Buffer.alloc(0), s, catalog, limits);
    expect(types(answerOption(9, Buffer.concat([str32('disk'), u32(0)]), s, catalog, limits).replies)).toEqual([4, 1]);
    expect(types(answerOption(10, query, s, catalog, limits).replies)).toEqual([4, 1]);
    const go = answerOption(7, Buffer.concat([str32('disk'), u16(0)]), s, catalog, limits);
    expect(go.next === 'go' && go.allocation).toBe(true);
    // A query of another namespace selects nothing (and is no error).
    const other = Buffer.concat([str32('disk'), u32(1), str32('qemu:dirty-bitmap:x')]);
    expect(types(answerOption(10, other, s, catalog, limits).replies)).toEqual([1]);
    expect(s.allocationFor).toBeUndefined();
  });

  it('EXPORT_NAME answers size and flags (with the 124 zeroes unless NO_ZEROES), or hangs up', () => {
    const out = answerOption(1, Buffer.from('disk'), newNegotiation(false), catalog, limits);
    expect([out.next, out.replies[0]?.length]).toEqual(['go', 134]);
    expect(answerOption(1, Buffer.from('disk'), newNegotiation(true), catalog, limits).replies[0]?.length).toBe(10);
    expect(answerOption(1, Buffer.from('nope'), newNegotiation(true), catalog, limits).next).toBe('close');
  });

  it('ABORT is acknowledged then closes; unknown options and STARTTLS are ERR_UNSUP', () => {
    const s = newNegotiation(true);
    const abort = answerOption(2, Buffer.alloc(0), s, catalog, limits);
    expect([abort.next, types(abort.replies)]).toEqual(['close', [1]]);
    expect(types(answerOption(5, Buffer.alloc(0), s, catalog, limits).replies)).toEqual([0x80000001]);
    expect(types(answerOption(1234, Buffer.alloc(3), s, catalog, limits).replies)).toEqual([0x80000001]);
  });
});
