import { BASE_ALLOCATION, BASE_ALLOCATION_ID, NBD_FLAG, NBD_INFO, NBD_OPT, NBD_REP, NBD_REP_MAGIC } from '@thfc/format';

/**
 * Option haggling, the pure part: one option in, the replies to send and what
 * the session does next out. No I/O and no clock, so every option a hostile
 * client can send is a unit test.
 */

/** What a client sees of one export. */
export interface ExportInfo {
  readonly name: string;
  readonly size: number;
  readonly description?: string | undefined;
  /** The block size of the image: reads aligned to it cost the fewest block fetches. */
  readonly preferredBlockSize: number;
}

export interface ExportCatalog<E extends ExportInfo = ExportInfo> {
  /** The export a name selects; the empty name is the default export. */
  find(name: string): E | undefined;
  list(): readonly E[];
}

/** What the options so far have settled; a session starts with newNegotiation(). */
export interface Negotiation {
  /** The client asked for, and got, structured replies. */
  structured: boolean;
  /** The export base:allocation was selected for, by its name as the client gave it. */
  allocationFor: string | undefined;
  /** The client set NBD_FLAG_C_NO_ZEROES: no 124 zero bytes after NBD_OPT_EXPORT_NAME. */
  readonly noZeroes: boolean;
}

export function newNegotiation(noZeroes: boolean): Negotiation {
  return { structured: false, allocationFor: undefined, noZeroes };
}

export type OptionOutcome<E extends ExportInfo = ExportInfo> =
  | { readonly next: 'continue'; readonly replies: readonly Buffer[] }
  /** Hang up once the replies are out (NBD_OPT_ABORT, or an EXPORT_NAME that cannot be answered). */
  | { readonly next: 'close'; readonly replies: readonly Buffer[]; readonly reason: string }
  /** Transmission starts on `export` once the replies are out. */
  | { readonly next: 'go'; readonly replies: readonly Buffer[]; readonly export: E; readonly allocation: boolean };

export interface NegotiationLimits {
  /** The largest READ a client may send; told to clients that ask for block sizes. */
  readonly maxRequestBytes: number;
}

/**
 * Read-only (writes get EPERM), safe on many connections at once (nothing is
 * cached per connection), FLUSH accepted (a no-op: clients such as qemu flush
 * regardless) and CACHE understood (it prefetches blocks).
 */
export const TRANSMISSION_FLAGS =
  NBD_FLAG.HAS_FLAGS | NBD_FLAG.READ_ONLY | NBD_FLAG.SEND_FLUSH | NBD_FLAG.CAN_MULTI_CONN | NBD_FLAG.SEND_CACHE;

/** Strings are at most 4096 bytes (the protocol's own bound). */
const MAX_STRING = 4096;

class BadOption extends Error {}

/** Reads an option's data front to back; any overrun is the client's malformed option. */
class Cursor {
  private at = 0;
  constructor(private readonly data: Buffer) {}
  u16(): number {
    this.need(2);
    const v = this.data.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.data.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  string(length: number): string {
    if (length > MAX_STRING) throw new BadOption(`a string of ${length} bytes (most ${MAX_STRING})`);
    this.need(length);
    const s = this.data.toString('utf8', this.at, this.at + length);
    this.at += length;
    return s;
  }
  end(): void {
    if (this.at !== this.data.length) throw new BadOption(`${this.data.length - this.at} bytes of trailing data`);
  }
  private need(n: number): void {
    if (this.at + n > this.data.length) throw new BadOption('the option data ends early');
  }
}

export function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

/** An option refused with an error reply (`type`: an NBD_REP.ERR_*); the haggling goes on. */
const refuse = (option: number, type: number, message: string) =>
  ({ next: 'continue', replies: [optionReply(option, type, Buffer.from(message, 'utf8'))] }) as const;

/** Answers one option. Mutates `state` for STRUCTURED_REPLY and SET_META_CONTEXT. */
export function answerOption<E extends ExportInfo>(
  option: number,
  data: Buffer,
  state: Negotiation,
  catalog: ExportCatalog<E>,
  limits: NegotiationLimits,
): OptionOutcome<E> {
  try {
    return answer(option, data, { state, catalog, limits });
  } catch (e) {
    if (!(e instanceof BadOption)) throw e;
    return refuse(option, NBD_REP.ERR_INVALID, e.message);
  }
}

/** What an answer reads: the session so far (STRUCTURED_REPLY and SET_META_CONTEXT change it), the exports, the limits. */
interface Haggle<E extends ExportInfo> {
  readonly state: Negotiation;
  readonly catalog: ExportCatalog<E>;
  readonly limits: NegotiationLimits;
}

/** Dispatches one option to its answer; a malformed option throws BadOption. */
function answer<E extends ExportInfo>(option: number, data: Buffer, haggle: Haggle<E>): OptionOutcome<E> {
  const { state, catalog } = haggle;
  switch (option) {
    case NBD_OPT.EXPORT_NAME:
      return answerExportName(data, haggle);
    case NBD_OPT.ABORT:
      return { next: 'close', replies: [optionReply(option, NBD_REP.ACK)], reason: 'the client aborted' };
    case NBD_OPT.LIST:
      return answerList(option, data, catalog);
    case NBD_OPT.INFO:
    case NBD_OPT.GO:
      return answerInfoOrGo(option, data, haggle);
    case NBD_OPT.STRUCTURED_REPLY:
      new Cursor(data).end();
      state.structured = true;
      return { next: 'continue', replies: [optionReply(option, NBD_REP.ACK)] };
    case NBD_OPT.LIST_META_CONTEXT:
    case NBD_OPT.SET_META_CONTEXT:
      return answerMetaContext(option, data, haggle);
    default:
      // STARTTLS included: this server has no TLS (a Unix socket, or TCP the operator chose).
      return refuse(option, NBD_REP.ERR_UNSUP, `option ${option} is not supported`);
  }
}

/** NBD_OPT_EXPORT_NAME, the old way in: the export's size and flags, then transmission. */
function answerExportName<E extends ExportInfo>(data: Buffer, { state, catalog }: Haggle<E>): OptionOutcome<E> {
  // No way to say no but hanging up.
  const name = data.length <= MAX_STRING ? data.toString('utf8') : undefined;
  const found = name === undefined ? undefined : catalog.find(name);
  if (!found) return { next: 'close', replies: [], reason: `NBD_OPT_EXPORT_NAME of an unknown export` };
  const b = Buffer.alloc(10 + (state.noZeroes ? 0 : 124));
  b.writeBigUInt64BE(BigInt(found.size), 0);
  b.writeUInt16BE(TRANSMISSION_FLAGS, 8);
  return { next: 'go', replies: [b], export: found, allocation: false };
}

/** NBD_OPT_LIST: one NBD_REP_SERVER per export (name and description), then an ACK. */
function answerList<E extends ExportInfo>(option: number, data: Buffer, catalog: ExportCatalog<E>): OptionOutcome<E> {
  new Cursor(data).end();
  const replies = catalog.list().map((e) => {
    const name = Buffer.from(e.name, 'utf8');
    const desc = Buffer.from(e.description ?? '', 'utf8');
    const d = Buffer.alloc(4 + name.length + desc.length);
    d.writeUInt32BE(name.length, 0);
    name.copy(d, 4);
    desc.copy(d, 4 + name.length);
    return optionReply(option, NBD_REP.SERVER, d);
  });
  return { next: 'continue', replies: [...replies, optionReply(option, NBD_REP.ACK)] };
}

/** NBD_OPT_INFO and NBD_OPT_GO: the export's info replies; GO then starts transmission. */
function answerInfoOrGo<E extends ExportInfo>(
  option: number,
  data: Buffer,
  { state, catalog, limits }: Haggle<E>,
): OptionOutcome<E> {
  const c = new Cursor(data);
  const name = c.string(c.u32());
  const requests = Array.from({ length: c.u16() }, () => c.u16());
  c.end();
  const found = catalog.find(name);
  if (!found) {
    return refuse(option, NBD_REP.ERR_UNKNOWN, `no export named "${name}"`);
  }
  const replies = [...infoReplies(option, found, requests, limits), optionReply(option, NBD_REP.ACK)];
  if (option === NBD_OPT.INFO) return { next: 'continue', replies };
  return { next: 'go', replies, export: found, allocation: state.allocationFor === name };
}

/**
 * NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: base:allocation is the one context there is.
 * SET records (in `state`) whether it was selected, and for which export.
 */
function answerMetaContext<E extends ExportInfo>(
  option: number,
  data: Buffer,
  { state, catalog }: Haggle<E>,
): OptionOutcome<E> {
  const c = new Cursor(data);
  const name = c.string(c.u32());
  const queries = Array.from({ length: c.u32() }, () => c.string(c.u32()));
  c.end();
  if (!state.structured) {
    return refuse(option, NBD_REP.ERR_INVALID, 'metadata contexts need structured replies first');
  }
  if (!catalog.find(name)) {
    return refuse(option, NBD_REP.ERR_UNKNOWN, `no export named "${name}"`);
  }
  const set = option === NBD_OPT.SET_META_CONTEXT;
  // Listing with no query lists everything; "base:" lists the base namespace. Selecting takes exact names.
  const selected = set
    ? queries.includes(BASE_ALLOCATION)
    : queries.length === 0 || queries.some((q) => q === BASE_ALLOCATION || q === 'base:');
  if (set) state.allocationFor = selected ? name : undefined;
  const replies: Buffer[] = [];
  if (selected) {
    const ctx = Buffer.from(BASE_ALLOCATION, 'utf8');
    const d = Buffer.alloc(4 + ctx.length);
    d.writeUInt32BE(set ? BASE_ALLOCATION_ID : 0, 0);
    ctx.copy(d, 4);
    replies.push(optionReply(option, NBD_REP.META_CONTEXT, d));
  }
  return { next: 'continue', replies: [...replies, optionReply(option, NBD_REP.ACK)] };
}

/** NBD_INFO_EXPORT always; name, description and block sizes when asked for. */
function infoReplies(option: number, e: ExportInfo, requests: number[], limits: NegotiationLimits): Buffer[] {
  const info = (type: number, body: Buffer) => {
    const d = Buffer.alloc(2 + body.length);
    d.writeUInt16BE(type, 0);
    body.copy(d, 2);
    return optionReply(option, NBD_REP.INFO, d);
  };
  const exp = Buffer.alloc(10);
  exp.writeBigUInt64BE(BigInt(e.size), 0);
  exp.writeUInt16BE(TRANSMISSION_FLAGS, 8);
  const out = [info(NBD_INFO.EXPORT, exp)];
  if (requests.includes(NBD_INFO.NAME)) out.push(info(NBD_INFO.NAME, Buffer.from(e.name, 'utf8')));
  if (requests.includes(NBD_INFO.DESCRIPTION) && e.description) {
    out.push(info(NBD_INFO.DESCRIPTION, Buffer.from(e.description, 'utf8')));
  }
  if (requests.includes(NBD_INFO.BLOCK_SIZE)) {
    const sizes = Buffer.alloc(12);
    sizes.writeUInt32BE(1, 0); // any byte offset and length may be read
    sizes.writeUInt32BE(Math.min(e.preferredBlockSize, limits.maxRequestBytes), 4);
    sizes.writeUInt32BE(limits.maxRequestBytes, 8);
    out.push(info(NBD_INFO.BLOCK_SIZE, sizes));
  }
  return out;
}
