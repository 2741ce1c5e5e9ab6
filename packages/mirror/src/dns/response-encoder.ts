import { parseAddress } from './networks.js';
import type { ZoneRecord } from './zone.js';

/**
 * DNS responses to bytes (RFC 1035 §4), for the record types the zone
 * answers with, with name compression (§4.1.4): an owner name, NS and SOA
 * names, and a name already written point back to where it was first
 * written. SRV targets are written whole, as RFC 2782 asks, and later names
 * may point at them. A full SRV answer (16 SRV records, their 16 A records)
 * takes ~1 KB this way instead of ~1.7 KB, so it fits a 1232-byte UDP answer
 * with its additional section. Pure: header fields and records in, bytes out.
 */

export interface ResponseHeader {
  readonly id: number;
  /** QR is set here; the rest (opcode, AA, TC, RD, rcode) as given. */
  readonly flags: number;
  /** The query's question section, echoed byte for byte. */
  readonly question: Uint8Array;
  readonly questionCount: number;
  /** The UDP payload size to advertise in an OPT record; undefined: no OPT (the query had none). */
  readonly ednsPayload?: number | undefined;
}

export interface ResponseSections {
  readonly answers: readonly ZoneRecord[];
  readonly authorities: readonly ZoneRecord[];
  readonly additionals: readonly ZoneRecord[];
}

const QR = 0x8000;
const TYPE = { A: 1, NS: 2, SOA: 6, TXT: 16, AAAA: 28, SRV: 33, OPT: 41 } as const;
const CLASS_IN = 1;
/** Offsets a compression pointer can reach (14 bits). */
const MAX_POINTER = 0x3fff;
/** A DNS message is at most 65535 bytes (the TCP length prefix). */
const MAX_MESSAGE = 65535;

/** One encoder, one buffer: responses are encoded synchronously, one at a time, then copied out. */
const scratch = Buffer.allocUnsafe(MAX_MESSAGE);

export function encodeResponse(header: ResponseHeader, sections: ResponseSections): Buffer {
  const w = new Writer(scratch);
  w.u16(header.id);
  w.u16(header.flags | QR);
  w.u16(header.questionCount);
  w.u16(sections.answers.length);
  w.u16(sections.authorities.length);
  w.u16(sections.additionals.length + (header.ednsPayload === undefined ? 0 : 1));
  w.rememberQuestion(header.question);
  w.bytes(header.question);
  for (const r of sections.answers) w.record(r);
  for (const r of sections.authorities) w.record(r);
  for (const r of sections.additionals) w.record(r);
  if (header.ednsPayload !== undefined) {
    w.u8(0); // the root
    w.u16(TYPE.OPT);
    w.u16(header.ednsPayload);
    w.u32(0); // extended rcode 0, version 0, no flags
    w.u16(0);
  }
  return Buffer.from(scratch.subarray(0, w.at));
}

class Writer {
  at = 0;
  /** Where each name (and each of its suffixes) was first written, as written. */
  private readonly names = new Map<string, number>();

  constructor(private readonly buf: Buffer) {}

  u8(n: number): void {
    this.room(1);
    this.buf[this.at++] = n;
  }

  u16(n: number): void {
    this.room(2);
    this.buf.writeUInt16BE(n, this.at);
    this.at += 2;
  }

  u32(n: number): void {
    this.room(4);
    this.buf.writeUInt32BE(n >>> 0, this.at);
    this.at += 4;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /**
   * Notes the first question's name, about to be written here, so answers
   * (whose owner is the name asked) point at it. Only a name of plain labels
   * counts: one with a pointer, or a dot inside a label, is not noted.
   */
  rememberQuestion(question: Uint8Array): void {
    const labels: { at: number; text: string }[] = [];
    for (let i = 0; i < question.length; ) {
      const length = question[i] as number;
      if (length === 0) break;
      if (length > 63 || i + 1 + length > question.length) return;
      const text = Buffer.from(question.buffer, question.byteOffset + i + 1, length).toString('latin1');
      if (text.includes('.')) return;
      labels.push({ at: this.at + i, text });
      i += 1 + length;
    }
    for (let k = 0; k < labels.length; k++) {
      const { at } = labels[k] as { at: number };
      const suffix = labels
        .slice(k)
        .map((l) => l.text)
        .join('.');
      if (at <= MAX_POINTER && !this.names.has(suffix)) this.names.set(suffix, at);
    }
  }

  /** A domain name, compressed unless `whole` (SRV targets); '' or '.' is the root. */
  name(text: string, whole = false): void {
    const name = text.replace(/\.$/, '');
    let p = 0;
    while (name && p < name.length) {
      const suffix = p === 0 ? name : name.slice(p);
      const pointer = whole ? undefined : this.names.get(suffix);
      if (pointer !== undefined) {
        this.u16(0xc000 | pointer);
        return;
      }
      if (this.at <= MAX_POINTER && !this.names.has(suffix)) this.names.set(suffix, this.at);
      const dot = name.indexOf('.', p);
      const label = dot < 0 ? name.slice(p) : name.slice(p, dot);
      const length = Buffer.byteLength(label);
      if (length < 1 || length > 63) throw new RangeError(`bad label "${label}" in "${text}"`);
      this.room(1 + length);
      this.buf[this.at] = length;
      this.buf.write(label, this.at + 1, 'utf8');
      this.at += 1 + length;
      if (dot < 0) break;
      p = dot + 1;
    }
    this.u8(0);
  }

  record(r: ZoneRecord): void {
    this.name(r.name);
    this.u16(TYPE[r.type]);
    this.u16(CLASS_IN);
    this.u32(r.ttl);
    const lengthAt = this.at;
    this.u16(0);
    const start = this.at;
    switch (r.type) {
      case 'A':
      case 'AAAA':
        this.address(r.type, r.data);
        break;
      case 'NS':
        this.name(r.data);
        break;
      case 'SRV':
        this.u16(r.data.priority);
        this.u16(r.data.weight);
        this.u16(r.data.port);
        this.name(r.data.target, true);
        break;
      case 'TXT':
        for (const s of r.data) {
          const length = Buffer.byteLength(s);
          if (length > 255) throw new RangeError('a TXT string longer than 255 bytes');
          this.room(1 + length);
          this.buf[this.at] = length;
          this.buf.write(s, this.at + 1, 'utf8');
          this.at += 1 + length;
        }
        break;
      case 'SOA':
        this.name(r.data.mname);
        this.name(r.data.rname);
        this.u32(r.data.serial);
        this.u32(r.data.refresh);
        this.u32(r.data.retry);
        this.u32(r.data.expire);
        this.u32(r.data.minimum);
        break;
    }
    this.buf.writeUInt16BE(this.at - start, lengthAt);
  }

  private address(type: 'A' | 'AAAA', ip: string): void {
    if (type === 'A') {
      // The common case, without bigints: four decimal octets.
      const octets = ip.split('.');
      if (octets.length === 4 && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) {
        this.room(4);
        for (const o of octets) this.buf[this.at++] = Number(o);
        return;
      }
    }
    const a = parseAddress(ip);
    if (!a || a.family !== (type === 'A' ? 4 : 6)) {
      throw new RangeError(`"${ip}" is not an ${type === 'A' ? 'IPv4' : 'IPv6'} address`);
    }
    const bytes = type === 'A' ? 4 : 16;
    this.room(bytes);
    for (let i = bytes - 1; i >= 0; i--) {
      this.buf[this.at + i] = Number((a.value >> BigInt(8 * (bytes - 1 - i))) & 0xffn);
    }
    this.at += bytes;
  }

  private room(n: number): void {
    if (this.at + n > this.buf.length) throw new RangeError('a DNS message cannot exceed 65535 bytes');
  }
}
