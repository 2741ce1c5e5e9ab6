import { describe, expect, it } from 'vitest';
import { blockSteps, parseQemuMap } from '../src/image-extents.js';

const map = (e: object[]) => JSON.stringify(e);

describe('parseQemuMap', () => {
  it('reads holes (zero, or present nowhere) and data, merging neighbours of one kind', () => {
    const { extents, size } = parseQemuMap(
      map([
        { start: 0, length: 100, depth: 0, present: true, zero: true, data: false, offset: 0 },
        { start: 100, length: 50, depth: 0, present: false, zero: false, data: false },
        { start: 150, length: 10, depth: 0, present: true, zero: false, data: true, offset: 150 },
        { start: 160, length: 40, depth: 1, present: true, zero: false, data: true, offset: 9 },
      ]),
      'x',
    );
    expect(size).toBe(200);
    expect(extents).toEqual([
      { start: 0, length: 150, zero: true },
      { start: 150, length: 50, zero: false },
    ]);
  });

  it('refuses gaps, overlaps and garbage rather than guessing holes', () => {
    expect(() => parseQemuMap(map([{ start: 10, length: 5, zero: true }]), 'x')).toThrow(/at 10 where 0/);
    expect(() => parseQemuMap('not json', 'x')).toThrow(/not JSON/);
    expect(() => parseQemuMap(map([{ start: 0, length: -1 }]), 'x')).toThrow(/bad extent/);
    expect(() => parseQemuMap('{}', 'x')).toThrow(/no list/);
  });
});

describe('blockSteps', () => {
  const B = 100;
  it('merges whole hole blocks into one step and reads any block that holds data', () => {
    const extents = [
      { start: 0, length: 350, zero: true },
      { start: 350, length: 10, zero: false },
      { start: 360, length: 640, zero: true },
    ];
    expect([...blockSteps(extents, 1000, B)]).toEqual([
      { kind: 'holes', count: 3, bytes: 300 },
      { kind: 'read', start: 300, length: 100 },
      { kind: 'holes', count: 6, bytes: 600 },
    ]);
  });

  it('counts a short last block as a hole when the hole reaches the end', () => {
    const extents = [
      { start: 0, length: 120, zero: false },
      { start: 120, length: 130, zero: true },
    ];
    expect([...blockSteps(extents, 250, B)]).toEqual([
      { kind: 'read', start: 0, length: 100 },
      { kind: 'read', start: 100, length: 100 },
      { kind: 'holes', count: 1, bytes: 50 },
    ]);
  });

  it('reads every block of an image with no holes, the short last one included', () => {
    expect([...blockSteps([{ start: 0, length: 250, zero: false }], 250, B)].map((s) => s.kind)).toEqual([
      'read',
      'read',
      'read',
    ]);
  });

  it('is lazy: a 4-million-block hole is one step', () => {
    const size = 2 ** 40;
    const steps = [...blockSteps([{ start: 0, length: size, zero: true }], size, 262144)];
    expect(steps).toEqual([{ kind: 'holes', count: 4194304, bytes: size }]);
  });
});
