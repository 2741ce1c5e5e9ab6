import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSink,
  blockId,
  MirrorUnavailableError,
  type SourceOptions,
} from '@thfc/format';
import { blockSourceContract, FakeSource } from '@thfc/format/testing';
import { HttpSource, VerifiedSource, verified } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { makeBlock, startBlockServer } from './block-server.js';

/** verified() over a fake, with the fake's put() so the contract suite can fill it. */
class VerifiedFake extends VerifiedSource implements BlockSink {
  constructor(readonly fake: FakeSource) {
    super({ source: fake });
  }
  put(ref: BlockRef, stored: Uint8Array, options?: SourceOptions): Promise<void> {
    return this.fake.put(ref, stored, options);
  }
}

blockSourceContract('VerifiedSource', async () => new VerifiedFake(new FakeSource()), { describe, it, expect });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('verified', () => {
  it('returns the inner source’s stored bytes, the same object, once they verify', async () => {
    const fake = new FakeSource('a');
    const { ref, stored } = makeBlock(1);
    fake.blocks.set(ref.id, stored);
    const got = await verified(fake).get(ref);
    expect(got).toBe(stored);
  });

  it('getVerified gives the stored bytes with the block they decoded to', async () => {
    const fake = new FakeSource('a');
    const { ref, stored } = makeBlock(1);
    fake.blocks.set(ref.id, stored);
    const got = await verified(fake).getVerified(ref);
    expect(got.stored).toBe(stored);
    expect(got.data).toHaveLength(ref.size);
    expect(blockId(got.data, 'sha1')).toBe(ref.id);
  });

  it('bytes that hash to another block are BlockCorruptError naming the inner source', async () => {
    const fake = new FakeSource('a');
    const { ref, stored } = makeBlock(2);
    const bad = Uint8Array.from(stored);
    bad[bad.length >> 1] = (bad[bad.length >> 1] ?? 0) ^ 0xff;
    fake.blocks.set(ref.id, bad);
    const e = await verified(fake)
      .get(ref)
      .catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as BlockCorruptError).source).toBe('fake(a)');
    expect((e as BlockCorruptError).blockId).toBe(ref.id);
  });

  it('another block’s bytes are BlockCorruptError', async () => {
    const fake = new FakeSource('a');
    const wanted = makeBlock(3);
    const other = makeBlock(4);
    fake.onGet = () => other.stored;
    await expect(verified(fake).get(wanted.ref)).rejects.toBeInstanceOf(BlockCorruptError);
  });

  it('passes the inner source’s seam errors on unchanged', async () => {
    const fake = new FakeSource('a');
    const { ref } = makeBlock(5);
    const source = verified(fake);
    await expect(source.get(ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    for (const thrown of [
      new MirrorUnavailableError('fake(a)', 'down'),
      new BlockCorruptError(ref.id, 'fake(a)', 'short body'),
    ]) {
      fake.onGet = () => {
        throw thrown;
      };
      await expect(source.get(ref)).rejects.toBe(thrown);
    }
  });

  it('passes has() and the caller’s abort through', async () => {
    const fake = new FakeSource('a');
    const { ref, stored } = makeBlock(6);
    const source = verified(fake);
    expect(await source.has(ref)).toBe(false);
    fake.blocks.set(ref.id, stored);
    expect(await source.has(ref)).toBe(true);
    const reason = new Error('stop');
    await expect(source.get(ref, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it('prints verified(<inner>)', () => {
    expect(String(verified(new FakeSource('a')))).toBe('verified(fake(a))');
  });

  it('catches a mirror serving corrupt bytes over HTTP', async () => {
    const server = await startBlockServer();
    const http = new HttpSource({}, { baseUrl: server.url });
    cleanups.push(
      () => http.close(),
      () => server.close(),
    );
    const { ref, stored } = makeBlock(7);
    server.blocks.set(ref.id, stored);
    const source = verified(http);
    expect(await source.get(ref)).toHaveLength(stored.length);
    server.fault = () => ({ kind: 'corrupt' });
    const e = await source.get(ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(BlockCorruptError);
    expect((e as BlockCorruptError).source).toBe(`http(${server.url})`);
  });
});
