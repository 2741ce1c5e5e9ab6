import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

/**
 * A fake DNS server for client tests: a real UDP socket on 127.0.0.1 that
 * answers from a Map of `name TYPE` → records, with a hook to drop, delay or
 * fail any question. (The real DNS-Balance server lives in @thfc/mirror and
 * is exercised with this client end to end in test/dns-balance.test.ts.)
 */
export type FakeRecord =
  | { type: 'A' | 'AAAA'; data: string; ttl?: number }
  | { type: 'SRV'; data: { priority: number; weight: number; port: number; target: string }; ttl?: number }
  | { type: 'TXT'; data: string[]; ttl?: number };

export type DnsFault = 'drop' | 'servfail' | 'refused' | undefined;

export interface FakeDns {
  /** HOST:PORT to hand to the resolver. */
  server: string;
  readonly records: Map<string, FakeRecord[]>;
  readonly questions: string[];
  fault: (question: string) => DnsFault;
  close(): Promise<void>;
}

export async function startFakeDns(): Promise<FakeDns> {
  const socket = dgram.createSocket('udp4');
  const records = new Map<string, FakeRecord[]>();
  const questions: string[] = [];
  const fake: FakeDns = {
    server: '',
    records,
    questions,
    fault: () => undefined,
    close: () => new Promise((r) => socket.close(() => r())),
  };
  socket.on('message', (msg, rinfo) => {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const q = query.questions?.[0];
    if (!q) return;
    const key = `${q.name.toLowerCase()} ${q.type}`;
    questions.push(key);
    const fault = fake.fault(key);
    if (fault === 'drop') return;
    const found = records.get(key);
    const zoneHas = [...records.keys()].some((k) => k.startsWith(`${q.name.toLowerCase()} `));
    const rcode = fault === 'servfail' ? 2 : fault === 'refused' ? 5 : !found && !zoneHas ? 3 : 0;
    const reply = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | rcode,
      questions: [q],
      answers:
        rcode === 0
          ? (found ?? []).map(
              (r) => ({ name: q.name, type: r.type, ttl: r.ttl ?? 5, class: 'IN', data: r.data }) as dnsPacket.Answer,
            )
          : [],
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  fake.server = `127.0.0.1:${socket.address().port}`;
  return fake;
}
