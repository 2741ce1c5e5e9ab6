import dgram from 'node:dgram';
import net from 'node:net';
import { InvalidArgumentError, MirrorUnavailableError } from '@thfc/format';
import type { Logger } from '@thfc/store';
import dnsPacket from 'dns-packet';
import { AnswerCache, MAX_CACHED_QUERY_BYTES, MAX_CACHED_REPLY_BYTES } from './answer-cache.js';
import { encodeResponse } from './response-encoder.js';
import type { ZoneResponse } from './zone.js';

/**
 * The DNS wire, and the only importer of dns-packet, node:dgram and node:net
 * in the mirror package. UDP and TCP on one address and port; every question
 * is handed to a pure `answer` function (zone.ts) and its result encoded.
 *
 * Rules kept here:
 * - Anything that does not decode, is a response (QR set), or is shorter
 *   than a header is dropped without a reply: no crash, no reflection.
 * - Opcodes other than QUERY get NOTIMP; not exactly one question, FORMERR;
 *   a class other than IN, REFUSED.
 * - UDP answers fit 512 bytes, or the EDNS payload size the client offers
 *   (clamped to MAX_UDP_PAYLOAD). When they do not: additional records are
 *   dropped first, then TC is set and whole records are cut until it fits,
 *   so the client retries over TCP.
 * - TCP: two-byte length prefix, several queries per connection, an idle
 *   timeout, a bound on connections and on unsent output per connection.
 */

/** RFC 1035's UDP limit for a client that sends no EDNS. */
const CLASSIC_UDP_PAYLOAD = 512;
/**
 * The largest UDP answer sent whatever a client offers: 1232 bytes is the
 * DNS flag day 2020 size that avoids IP fragmentation on any path.
 */
export const MAX_UDP_PAYLOAD = 1232;
/** TCP connections at once: DNS over TCP is the rare fallback; 64 covers bursts of truncated answers. */
export const DEFAULT_DNS_MAX_TCP_CONNECTIONS = 64;
/** An idle TCP connection is closed after 10 s (RFC 7766 suggests seconds, not minutes). */
export const DEFAULT_DNS_TCP_IDLE_MS = 10_000;
/** A client that does not read its answers is cut off after 256 KiB of unsent output. */
const MAX_TCP_BACKLOG_BYTES = 256 * 1024;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export interface DnsClient {
  readonly address: string;
  readonly port: number;
  readonly transport: 'udp' | 'tcp';
}

export type AnswerFunction = (question: { name: string; type: string }, client: DnsClient) => ZoneResponse;

/**
 * The state the answers depend on besides the question and the client's
 * address: while it returns the same value (===), `answer` gives the same
 * response to the same question from the same address, so encoded responses
 * are reused (answer-cache.ts). Undefined: nothing is reused.
 */
export type AnswerEpoch = () => unknown;

export interface DnsServerOptions {
  /** An IP address to listen on (IPv4 or IPv6). */
  readonly host: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  readonly port: number;
  readonly maxTcpConnections?: number;
  readonly tcpIdleMs?: number;
  /** Encoded responses kept for reuse (answer-cache.ts); default DEFAULT_ANSWER_CACHE_ENTRIES. */
  readonly answerCacheEntries?: number;
}

export interface DnsServerCounters {
  queries: number;
  /** Packets dropped: undecodable, responses, shorter than a header. */
  dropped: number;
  truncated: number;
  failures: number;
  /** Queries answered from the answer cache (also counted in `queries`). */
  reused: number;
}

export class DnsServer {
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly answer: AnswerFunction;
  private readonly answerEpoch: AnswerEpoch | undefined;
  private readonly cache: AnswerCache;
  private readonly logger: Pick<Logger, 'info' | 'fault'> | undefined;
  readonly counters: DnsServerCounters = { queries: 0, dropped: 0, truncated: 0, failures: 0, reused: 0 };

  constructor(
    components: {
      answer: AnswerFunction;
      answerEpoch?: AnswerEpoch;
      logger?: Pick<Logger, 'info' | 'fault'>;
    },
    private readonly options: DnsServerOptions,
  ) {
    if (!net.isIP(options.host))
      throw new InvalidArgumentError(`listen host must be an IP address, not "${options.host}"`);
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      throw new InvalidArgumentError(`bad listen port ${options.port}`);
    }
    this.answer = components.answer;
    this.answerEpoch = components.answerEpoch;
    this.cache = new AnswerCache(options.answerCacheEntries);
    this.logger = components.logger;
  }

  /** Binds UDP and TCP; resolves with the address both listen on. */
  async listen(signal?: AbortSignal): Promise<{ host: string; port: number }> {
    // With port 0 the UDP port is picked first and TCP must get the same one; another process may hold it on TCP.
    const attempts = this.options.port === 0 ? 8 : 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      signal?.throwIfAborted();
      const udp = dgram.createSocket({ type: net.isIPv6(this.options.host) ? 'udp6' : 'udp4' });
      try {
        await bindUdp(udp, this.options.host, this.options.port);
      } catch (e) {
        udp.close();
        throw new MirrorUnavailableError(
          `dns ${this.options.host}:${this.options.port}`,
          `UDP: ${(e as Error).message}`,
        );
      }
      const port = udp.address().port;
      const tcp = net.createServer((socket) => this.onTcp(socket));
      tcp.maxConnections = this.options.maxTcpConnections ?? DEFAULT_DNS_MAX_TCP_CONNECTIONS;
      try {
        await listenTcp(tcp, this.options.host, port);
      } catch (e) {
        udp.close();
        lastError = e;
        continue;
      }
      udp.on('message', (msg, rinfo) => this.onUdp(udp, msg, rinfo));
      udp.on('error', (e) => this.logger?.fault(`dns UDP socket: ${e.message}`));
      tcp.on('error', (e) => this.logger?.fault(`dns TCP server: ${e.message}`));
      this.udp = udp;
      this.tcp = tcp;
      return { host: this.options.host, port };
    }
    throw new MirrorUnavailableError(
      `dns ${this.options.host}:${this.options.port}`,
      `TCP: ${(lastError as Error)?.message ?? 'cannot listen'}`,
    );
  }

  async close(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    for (const s of this.sockets) s.destroy();
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : undefined,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : undefined,
    ]);
  }

  private onUdp(udp: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const reply = this.handle(msg, { address: rinfo.address, port: rinfo.port, transport: 'udp' });
    if (reply) udp.send(reply, rinfo.port, rinfo.address, () => {});
  }

  private onTcp(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(this.options.tcpIdleMs ?? DEFAULT_DNS_TCP_IDLE_MS, () => socket.destroy());
    const client: DnsClient = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' };
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // At most 64 KiB + 2 bytes are ever held: one message is read as soon as it is whole.
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const msg = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        const reply = this.handle(msg, client);
        if (!reply) {
          socket.destroy(); // a stream that does not parse cannot be re-synchronised
          return;
        }
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
        if (socket.writableLength > MAX_TCP_BACKLOG_BYTES) {
          socket.destroy();
          return;
        }
      }
    });
  }

  /** One query in, one encoded response out, or undefined to drop it. Never throws. */
  private handle(msg: Buffer, client: DnsClient): Buffer | undefined {
    if (msg.length < 12 || (msg.readUInt16BE(2) & 0x8000) !== 0) {
      this.counters.dropped++;
      return undefined;
    }
    // Only what an answer of the zone's became is kept, so only a query that decoded and was answered is found.
    const epoch = this.answerEpoch?.();
    const key =
      epoch === undefined || msg.length > MAX_CACHED_QUERY_BYTES
        ? undefined
        : AnswerCache.key(msg, client.transport, client.address);
    const reused = key === undefined ? undefined : this.reuse(key, msg, epoch);
    if (reused) return reused;
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      this.counters.dropped++;
      return undefined;
    }
    this.counters.queries++;
    const flags = msg.readUInt16BE(2);
    const opcode = (flags >> 11) & 0xf;
    const opt = query.additionals?.find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
    const limit = replyLimit(client.transport, opt);
    const questions = query.questions ?? [];
    const questionBytes = questionSection(msg);
    if (!questionBytes) {
      this.counters.dropped++;
      return undefined;
    }
    const base: Base = {
      id: query.id ?? 0,
      // Echo RD (bit 8) and the opcode, as RFC 1035 asks.
      rd: flags & 0x0100,
      opcode: opcode << 11,
      question: questionBytes,
      questionCount: msg.readUInt16BE(4),
      edns: !!opt,
    };
    if (opcode !== 0) return this.encode(base, 'NOTIMP', limit);
    const question = questions[0];
    if (!question || questions.length !== 1) return this.encode(base, 'FORMERR', limit);
    if (question.class && question.class !== 'IN' && question.class !== 'ANY')
      return this.encode(base, 'REFUSED', limit);
    let response: ZoneResponse;
    try {
      response = this.answer({ name: question.name, type: String(question.type) }, client);
    } catch (e) {
      this.counters.failures++;
      this.logger?.fault(`dns: answering ${question.name} ${question.type}: ${(e as Error).message}`);
      return this.encode(base, 'SERVFAIL', limit);
    }
    const truncatedBefore = this.counters.truncated;
    const reply = this.encode(base, response.rcode, limit, response);
    if (key !== undefined && reply.length <= MAX_CACHED_REPLY_BYTES)
      this.cache.set(key, reply, this.counters.truncated !== truncatedBefore, epoch);
    return reply;
  }

  /** The cached reply to the query `msg` under `key`, with the query's id, counted as reused; undefined if none. */
  private reuse(key: string, msg: Buffer, epoch: unknown): Buffer | undefined {
    const hit = this.cache.get(key, msg.readUInt16BE(0), epoch);
    if (!hit) return undefined;
    this.counters.queries++;
    this.counters.reused++;
    if (hit.truncated) this.counters.truncated++;
    return hit.response;
  }

  /**
   * The response in at most `limit` bytes: whole if it fits; else without
   * its additional section (optional, RFC 2181 §9); else with TC set, no
   * authority section, and answer records cut from the end until it fits.
   */
  private encode(base: Base, rcode: keyof typeof RCODE, limit: number, response?: ZoneResponse): Buffer {
    let answers = response?.answers ?? [];
    let authorities = response?.authorities ?? [];
    let additionals = response?.additionals ?? [];
    let truncated = false;
    const build = () =>
      encodeResponse(
        {
          id: base.id,
          flags:
            base.opcode |
            base.rd |
            (response?.authoritative ? AUTHORITATIVE_ANSWER : 0) |
            (truncated ? TRUNCATED_RESPONSE : 0) |
            RCODE[rcode],
          question: base.question,
          questionCount: base.questionCount,
          ednsPayload: base.edns ? MAX_UDP_PAYLOAD : undefined,
        },
        { answers, authorities, additionals },
      );
    let bytes = build();
    if (bytes.length <= limit) return bytes;
    additionals = [];
    bytes = build();
    if (bytes.length <= limit) return bytes;
    truncated = true;
    this.counters.truncated++;
    authorities = [];
    // Bounded: at most one encoding per answer record (≤ DEFAULT_DNS_MAX_MIRRORS + a few), each a few µs.
    while (answers.length > 0) {
      bytes = build();
      if (bytes.length <= limit) return bytes;
      answers = answers.slice(0, -1);
    }
    return build();
  }
}

interface Base {
  readonly id: number;
  readonly rd: number;
  readonly opcode: number;
  /** The query's question section as it came, echoed byte for byte. */
  readonly question: Uint8Array;
  readonly questionCount: number;
  /** The query had an OPT record: answer with one. */
  readonly edns: boolean;
}

const AUTHORITATIVE_ANSWER = 0x0400;
const TRUNCATED_RESPONSE = 0x0200;

/** The question section of a query that decoded: QDCOUNT names (labels, or ending in a pointer), each with type and class. */
function questionSection(msg: Buffer): Uint8Array | undefined {
  let i = 12;
  for (let q = msg.readUInt16BE(4); q > 0; q--) {
    for (;;) {
      const length = msg[i];
      if (length === undefined) return undefined;
      if (length === 0) {
        i += 1;
        break;
      }
      if ((length & 0xc0) === 0xc0) {
        i += 2;
        break;
      }
      i += 1 + length;
    }
    i += 4;
  }
  return i <= msg.length ? msg.subarray(12, i) : undefined;
}

function bindUdp(socket: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function listenTcp(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The most bytes a reply may take: a TCP message's; on UDP, what the client's EDNS advertises within our bounds. */
function replyLimit(transport: DnsClient['transport'], opt: dnsPacket.OptAnswer | undefined): number {
  if (transport === 'tcp') return 65535;
  return opt
    ? Math.min(Math.max(opt.udpPayloadSize || CLASSIC_UDP_PAYLOAD, CLASSIC_UDP_PAYLOAD), MAX_UDP_PAYLOAD)
    : CLASSIC_UDP_PAYLOAD;
}
