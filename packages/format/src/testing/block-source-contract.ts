import { blockId } from '../block-id.js';
import type { BlockRef, BlockSink, BlockSource } from '../block-source.js';
import { encodeBlock } from '../codecs.js';
import { BlockNotFoundError } from '../errors.js';

/**
 * The contract every BlockSource+BlockSink implementation runs, so that a
 * directory store, a disk cache and an HTTP mirror all mean the same thing by
 * get/has/put. Pass vitest's `describe`, `it` and `expect`; `make` returns a
 * fresh, empty implementation.
 */
export interface ContractTest {
  describe: (name: string, fn: () => void) => void;
  it: (name: string, fn: () => Promise<void>) => void;
  // biome-ignore lint/suspicious/noExplicitAny: vitest's expect is structurally typed by the caller's version
  expect: (value: unknown) => any;
}

export function sampleBlock(seed: number, size = 4096): { ref: BlockRef; stored: Uint8Array; data: Uint8Array } {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed * 7) & 0xff;
  const enc = encodeBlock(data, { codec: 'zstd', level: 3 });
  return {
    ref: { id: blockId(data, 'sha1'), codec: enc.codec, storedSize: enc.bytes.length, size },
    stored: enc.bytes,
    data,
  };
}

/** What the contract needs to know beyond get/has/put, for sources that keep files. */
export interface ContractProbes<S> {
  /**
   * The names of every file the source keeps (blocks and temp files), for
   * "no temp files left" after concurrent puts. Omit for a source without files.
   */
  files?: (source: S) => Promise<string[]>;
}

/** True when `e` is the abort `reason` itself or a DOM-style AbortError. */
function isAbortOf(e: unknown, reason: unknown): boolean {
  return e === reason || (e instanceof Error && e.name === 'AbortError');
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

export function blockSourceContract<S extends BlockSource & BlockSink>(
  name: string,
  make: () => Promise<S>,
  test: ContractTest,
  probes: ContractProbes<S> = {},
): void {
  test.describe(`${name} (BlockSource contract)`, () => {
    storageCases(make, test);
    abortCases(make, test);
    concurrencyCases(make, test, probes);
  });
}

/** get/has/put on one caller: absent, stored, stored twice, and a name. */
function storageCases<S extends BlockSource & BlockSink>(make: () => Promise<S>, { it, expect }: ContractTest): void {
  it('get rejects with BlockNotFoundError for an absent block', async () => {
    const s = await make();
    const { ref } = sampleBlock(1);
    await expect(s.get(ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(await s.has(ref)).toBe(false);
  });
  it('put then get returns the stored bytes exactly', async () => {
    const s = await make();
    const { ref, stored } = sampleBlock(2);
    await s.put(ref, stored);
    expect(await s.has(ref)).toBe(true);
    expect(Buffer.from(await s.get(ref)).equals(Buffer.from(stored))).toBe(true);
  });
  it('put is idempotent', async () => {
    const s = await make();
    const { ref, stored } = sampleBlock(3);
    await s.put(ref, stored);
    await s.put(ref, stored);
    expect(Buffer.from(await s.get(ref)).equals(Buffer.from(stored))).toBe(true);
  });
  it('toString names the source', async () => {
    const s = await make();
    expect(String(s).length).toBeGreaterThan(0);
  });
}

/** A get's signal, aborted before and during the get: it rejects and leaves the store as it was. */
function abortCases<S extends BlockSource & BlockSink>(make: () => Promise<S>, { it, expect }: ContractTest): void {
  it('an aborted signal rejects', async () => {
    const s = await make();
    const { ref, stored } = sampleBlock(4);
    await s.put(ref, stored);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(s.get(ref, { signal: ac.signal })).rejects.toThrow();
  });
  it('a signal aborted while a get is in flight rejects with the abort, and leaves the block readable', async () => {
    const s = await make();
    const { ref, stored } = sampleBlock(5);
    await s.put(ref, stored);
    const ac = new AbortController();
    const reason = new Error('stop mid-get');
    const inFlight = s.get(ref, { signal: ac.signal });
    ac.abort(reason);
    // Aborted before any I/O of the get could finish: it must not resolve.
    const error = await inFlight.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAbortOf(error, reason)).toBe(true);
    expect(await s.has(ref)).toBe(true);
    expect(sameBytes(await s.get(ref), stored)).toBe(true);
  });
  it('an aborted get of an absent block leaves it absent', async () => {
    const s = await make();
    const { ref } = sampleBlock(6);
    const ac = new AbortController();
    const inFlight = s.get(ref, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(inFlight).rejects.toBeDefined();
    expect(await s.has(ref)).toBe(false);
    await expect(s.get(ref)).rejects.toBeInstanceOf(BlockNotFoundError);
  });
}

/** Many callers at once: parallel gets, and identical puts. */
function concurrencyCases<S extends BlockSource & BlockSink>(
  make: () => Promise<S>,
  { it, expect }: ContractTest,
  probes: ContractProbes<S>,
): void {
  it('parallel gets of the same and of different refs each return their own bytes', async () => {
    const s = await make();
    const a = sampleBlock(7);
    const b = sampleBlock(8);
    const c = sampleBlock(9);
    for (const x of [a, b, c]) await s.put(x.ref, x.stored);
    const asked = [a, b, c, a, b, c, a, a, a, c];
    const got = await Promise.all(asked.map((x) => s.get(x.ref)));
    expect(got.map((bytes, i) => sameBytes(bytes, asked[i]?.stored ?? new Uint8Array()))).toEqual(
      asked.map(() => true),
    );
  });
  it('concurrent identical puts leave one whole block and no temp files', async () => {
    const s = await make();
    const { ref, stored } = sampleBlock(10, 256 * 1024);
    await Promise.all(Array.from({ length: 8 }, () => s.put(ref, stored)));
    expect(await s.has(ref)).toBe(true);
    expect(sameBytes(await s.get(ref), stored)).toBe(true);
    if (probes.files) expect(await probes.files(s)).toEqual([ref.id]);
  });
}
