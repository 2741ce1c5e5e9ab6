import { describe, expect, it } from 'vitest';
import { decideFault, formatFaultSpec, NO_FAULTS, parseFaultSpec } from '../../src/wan/fault-spec.js';

describe('parseFaultSpec', () => {
  it('parses the full form', () => {
    expect(parseFaultSpec('latency=50ms,jitter=10ms,bandwidth=2MB/s,error-rate=0.01,reset-rate=0.02')).toEqual({
      latencyMs: 50,
      jitterMs: 10,
      bandwidth: 2e6,
      errorRate: 0.01,
      resetRate: 0.02,
      dripRate: 0,
      dripBytes: 1,
      dripEveryMs: 100,
    });
    expect(parseFaultSpec('drip-rate=0.03,drip=4B/1s')).toMatchObject({
      dripRate: 0.03,
      dripBytes: 4,
      dripEveryMs: 1000,
    });
    expect(parseFaultSpec('drip-rate=0.1')).toMatchObject({ dripRate: 0.1, dripBytes: 1, dripEveryMs: 100 });
    expect(parseFaultSpec('latency=0.1s,bandwidth=1MiB/s')).toMatchObject({ latencyMs: 100, bandwidth: 1024 * 1024 });
    expect(parseFaultSpec('')).toEqual(NO_FAULTS);
  });

  it('rejects bad parts with a message naming them', () => {
    expect(() => parseFaultSpec('latency=fast')).toThrow(/latency=fast: expected a duration/);
    expect(() => parseFaultSpec('error-rate=2')).toThrow(/probability/);
    expect(() => parseFaultSpec('loss=0.1')).toThrow(/unknown fault/);
    expect(() => parseFaultSpec('latency')).toThrow(/key=value/);
    expect(() => parseFaultSpec('latency=5ms,jitter=10ms')).toThrow(/jitter cannot exceed/);
    expect(() => parseFaultSpec('drip-rate=1.5')).toThrow(/drip-rate=1.5: expected a probability/);
    expect(() => parseFaultSpec('drip-rate=')).toThrow(/probability/);
    expect(() => parseFaultSpec('drip-rate=0.1,drip=slow')).toThrow(/drip=slow: expected a pace like 1B\/100ms/);
    expect(() => parseFaultSpec('drip-rate=0.1,drip=0B/100ms')).toThrow(/expected a pace/);
    expect(() => parseFaultSpec('drip-rate=0.1,drip=1B/0ms')).toThrow(/expected a pace/);
    expect(() => parseFaultSpec('drip=2B/100ms')).toThrow(/add drip-rate/);
  });
});

describe('formatFaultSpec', () => {
  it('names what is set, in a form parseFaultSpec reads back', () => {
    const text = 'latency=50ms,jitter=10ms,bandwidth=2MB/s,error-rate=0.01,reset-rate=0.02';
    const canonical = formatFaultSpec(parseFaultSpec(text));
    expect(canonical).toBe('latency=50ms,jitter=10ms,bandwidth=2000000B/s,error-rate=0.01,reset-rate=0.02');
    expect(parseFaultSpec(canonical)).toEqual(parseFaultSpec(text));
    expect(formatFaultSpec(parseFaultSpec('reset-rate=0.5'))).toBe('reset-rate=0.5');
    expect(formatFaultSpec(NO_FAULTS)).toBe('');
    expect(formatFaultSpec(parseFaultSpec('drip-rate=0.03,drip=1B/100ms'))).toBe('drip-rate=0.03');
    const paced = formatFaultSpec(parseFaultSpec('drip-rate=0.1,drip=8B/0.5s'));
    expect(paced).toBe('drip-rate=0.1,drip=8B/500ms');
    expect(parseFaultSpec(paced)).toEqual(parseFaultSpec('drip-rate=0.1,drip=8B/0.5s'));
  });
});

describe('decideFault', () => {
  const seq = (...xs: number[]) => {
    let i = 0;
    return () => xs[i++ % xs.length] as number;
  };
  it('draws errors, delays within the jitter and reset points', () => {
    const spec = parseFaultSpec('latency=50ms,jitter=10ms,error-rate=0.5,reset-rate=0.5');
    expect(decideFault(spec, 1000, seq(0.1))).toEqual({ kind: 'error' });
    expect(decideFault(spec, 1000, seq(0.9, 1, 0.9))).toEqual({
      kind: 'serve',
      delayMs: 60,
      resetAfter: undefined,
      drip: false,
    });
    expect(decideFault(spec, 1000, seq(0.9, 0, 0.2, 0.25))).toEqual({
      kind: 'serve',
      delayMs: 40,
      resetAfter: 250,
      drip: false,
    });
    expect(decideFault(NO_FAULTS, 1000, seq(0))).toEqual({
      kind: 'serve',
      delayMs: 0,
      resetAfter: undefined,
      drip: false,
    });
  });

  it('draws drips at their rate, and a dripped response is never also cut', () => {
    const spec = parseFaultSpec('reset-rate=0.5,drip-rate=0.25');
    // rolls: jitter, drip, [reset, reset point]
    expect(decideFault(spec, 1000, seq(0.5, 0.2))).toMatchObject({ drip: true, resetAfter: undefined });
    expect(decideFault(spec, 1000, seq(0.5, 0.3, 0.1, 0.5))).toMatchObject({ drip: false, resetAfter: 500 });
    const spec3 = parseFaultSpec('drip-rate=0.03');
    const drips = Array.from({ length: 10_000 }, (_, i) => decideFault(spec3, 1000, seq(0.5, i / 10_000)));
    expect(drips.filter((d) => d.kind === 'serve' && d.drip).length).toBe(300);
  });
});
