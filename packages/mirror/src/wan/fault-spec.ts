import { InvalidArgumentError } from '@thfc/format';

/**
 * Per-request network faults for WAN simulation on loopback, where tc/netem
 * may be missing and tests may not leave 127.0.0.0/8:
 * `latency=50ms,jitter=10ms,bandwidth=2MB/s,error-rate=0.01,reset-rate=0.01,drip-rate=0.03,drip=1B/100ms`.
 */
export interface FaultSpec {
  /** Added before each response's first byte: one round trip of a link with this RTT. */
  readonly latencyMs: number;
  /** Uniform ± around the latency. */
  readonly jitterMs: number;
  /** Shared by every response, like one link; 0 = unlimited. Bytes per second. */
  readonly bandwidth: number;
  /** Probability that a request is answered 503. */
  readonly errorRate: number;
  /** Probability that a response's connection is cut mid-body. */
  readonly resetRate: number;
  /** Probability that a response's body is dripped: a slow mirror's tail (issue 13 §3). */
  readonly dripRate: number;
  /** A dripped body goes out `dripBytes` at a time, one piece every `dripEveryMs`, until done or the client leaves. */
  readonly dripBytes: number;
  readonly dripEveryMs: number;
}

/**
 * 1 byte per 100 ms: slow enough that a 256 KiB block would take 7 hours, fast
 * enough that the connection never goes idle, so only a goodput check (not an
 * idle timeout) finds it. The pace of the slow-drip report of issue 13.
 */
export const DEFAULT_DRIP_BYTES = 1;
export const DEFAULT_DRIP_EVERY_MS = 100;

export const NO_FAULTS: FaultSpec = {
  latencyMs: 0,
  jitterMs: 0,
  bandwidth: 0,
  errorRate: 0,
  resetRate: 0,
  dripRate: 0,
  dripBytes: DEFAULT_DRIP_BYTES,
  dripEveryMs: DEFAULT_DRIP_EVERY_MS,
};

const DURATION = /^(\d+(?:\.\d+)?)(ms|s)$/;
const RATE = /^(\d+(?:\.\d+)?)(B|KB|MB|GB|KiB|MiB|GiB)\/s$/;
/** A drip pace: bytes per period, `1B/100ms`, `64B/1s`. */
const DRIP = /^(\d+)B\/(\d+(?:\.\d+)?)(ms|s)$/;
const RATE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

export function parseFaultSpec(text: string): FaultSpec {
  const spec = { ...NO_FAULTS };
  if (text.trim() === '') return spec;
  for (const part of text.split(',')) {
    const [key, value] = part.split('=') as [string, string | undefined];
    const bad = (why: string) => new InvalidArgumentError(`--inject ${part}: ${why}`);
    if (value === undefined) throw bad('expected key=value');
    switch (key.trim()) {
      case 'latency':
      case 'jitter': {
        const m = DURATION.exec(value.trim());
        if (!m) throw bad('expected a duration like 50ms or 0.1s');
        const ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
        if (key.trim() === 'latency') spec.latencyMs = ms;
        else spec.jitterMs = ms;
        break;
      }
      case 'bandwidth': {
        const m = RATE.exec(value.trim());
        if (!m) throw bad('expected a rate like 2MB/s');
        spec.bandwidth = Number(m[1]) * (RATE_UNITS[m[2] as string] as number);
        break;
      }
      case 'error-rate':
      case 'reset-rate':
      case 'drip-rate': {
        const p = Number(value);
        if (value.trim() === '' || !Number.isFinite(p) || p < 0 || p > 1)
          throw bad('expected a probability from 0 to 1');
        if (key.trim() === 'error-rate') spec.errorRate = p;
        else if (key.trim() === 'reset-rate') spec.resetRate = p;
        else spec.dripRate = p;
        break;
      }
      case 'drip': {
        const m = DRIP.exec(value.trim());
        const bytes = Number(m?.[1]);
        const ms = Number(m?.[2]) * (m?.[3] === 's' ? 1000 : 1);
        if (!m || bytes < 1 || !(ms > 0)) throw bad('expected a pace like 1B/100ms (bytes per period)');
        spec.dripBytes = bytes;
        spec.dripEveryMs = ms;
        break;
      }
      default:
        throw bad('unknown fault (latency, jitter, bandwidth, error-rate, reset-rate, drip-rate, drip)');
    }
  }
  if (spec.jitterMs > spec.latencyMs) throw new InvalidArgumentError('--inject: jitter cannot exceed latency');
  const paced = spec.dripBytes !== DEFAULT_DRIP_BYTES || spec.dripEveryMs !== DEFAULT_DRIP_EVERY_MS;
  if (paced && spec.dripRate === 0)
    throw new InvalidArgumentError('--inject: drip= sets the pace of dripped responses; add drip-rate=FRACTION');
  return spec;
}

/** The spec in the form parseFaultSpec reads, naming only what is set; '' for no faults. */
export function formatFaultSpec(spec: FaultSpec): string {
  const parts: string[] = [];
  if (spec.latencyMs) parts.push(`latency=${spec.latencyMs}ms`);
  if (spec.jitterMs) parts.push(`jitter=${spec.jitterMs}ms`);
  if (spec.bandwidth) parts.push(`bandwidth=${spec.bandwidth}B/s`);
  if (spec.errorRate) parts.push(`error-rate=${spec.errorRate}`);
  if (spec.resetRate) parts.push(`reset-rate=${spec.resetRate}`);
  if (spec.dripRate) {
    parts.push(`drip-rate=${spec.dripRate}`);
    if (spec.dripBytes !== DEFAULT_DRIP_BYTES || spec.dripEveryMs !== DEFAULT_DRIP_EVERY_MS)
      parts.push(`drip=${spec.dripBytes}B/${spec.dripEveryMs}ms`);
  }
  return parts.join(',');
}

export type FaultDecision =
  | { kind: 'error' }
  | { kind: 'serve'; delayMs: number; resetAfter: number | undefined; drip: boolean };

/**
 * Draws the fate of one response of `size` bytes; `random` is injectable so
 * tests are deterministic. A dripped response is never also cut: it is the
 * slow tail, not a failure. Each draw happens only when its rate is set, so
 * adding a fault leaves the others' sequences alone.
 */
export function decideFault(spec: FaultSpec, size: number, random: () => number = Math.random): FaultDecision {
  if (spec.errorRate > 0 && random() < spec.errorRate) return { kind: 'error' };
  const delayMs = Math.max(0, spec.latencyMs + (random() * 2 - 1) * spec.jitterMs);
  const drip = spec.dripRate > 0 && random() < spec.dripRate;
  const resetAfter =
    !drip && spec.resetRate > 0 && random() < spec.resetRate ? Math.floor(random() * Math.max(1, size)) : undefined;
  return { kind: 'serve', delayMs, resetAfter, drip };
}
