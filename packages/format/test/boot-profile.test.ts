import { describe, expect, it } from 'vitest';
import { blockId } from '../src/block-id.js';
import { checkProfile, decodeProfile, encodeProfile } from '../src/boot-profile.js';
import { encodeBlock } from '../src/codecs.js';
import { IndexFormatError, InvalidArgumentError } from '../src/errors.js';
import { decodeIndex, encodeIndex } from '../src/image-index.js';
import { generateSigningKey, parsePrivateKey, parsePublicKey } from '../src/signature.js';
import { appendSignature, verifyInlineSignatures } from '../src/signature-line.js';

function block(seed: number): { id: string; codec: 'zstd' | 'none'; storedSize: number } {
  const data = Buffer.alloc(4096, seed);
  data.write(`block ${seed}`);
  const enc = encodeBlock(data, { codec: 'zstd', level: 3 });
  return { id: blockId(data, 'sha1'), codec: enc.codec as 'zstd' | 'none', storedSize: enc.bytes.length };
}

const entries = [block(1), block(2), block(3)];
const index = decodeIndex(
  encodeIndex(
    {
      version: 1,
      name: 'img',
      size: 4 * 4096,
      blockSize: 4096,
      hash: 'sha1',
      codec: 'zstd:3',
      created: '2026-01-01T00:00:00Z',
    },
    [...entries, { zero: true }],
  ),
);

describe('boot profile v1', () => {
  it('round-trips, binds to the index digest and checks against it', () => {
    const ids = [entries[2]?.id as string, entries[0]?.id as string];
    const p = decodeProfile(encodeProfile('img', index.digest, ids));
    expect(p.blocks).toEqual(ids);
    expect(p.image).toBe('img');
    expect(checkProfile(p, index.index, index.digest)).toEqual(ids.map((id) => ({ id })));
  });

  it('refuses a hostile profile that names a block its index does not reference', () => {
    const foreign = blockId(Buffer.from('not in the index'), 'sha1');
    const p = decodeProfile(encodeProfile('img', index.digest, [entries[0]?.id as string, foreign]));
    expect(() => checkProfile(p, index.index, index.digest)).toThrow(/does not reference/);
  });

  it('refuses a profile recorded against another index version or image', () => {
    const other = `sha256:${'0'.repeat(64)}`;
    expect(() => checkProfile(decodeProfile(encodeProfile('img', other, [])), index.index, index.digest)).toThrow(
      /recorded for index/,
    );
    expect(() =>
      checkProfile(decodeProfile(encodeProfile('other', index.digest, [])), index.index, index.digest),
    ).toThrow(/for image other/);
  });

  it('decodes strictly: truncation, tampering, duplicates and bad ids name the line', () => {
    const good = Buffer.from(
      encodeProfile(
        'img',
        index.digest,
        entries.map((e) => e.id),
      ),
    );
    for (let cut = 1; cut < good.length; cut += 7)
      expect(() => decodeProfile(good.subarray(0, cut))).toThrow(IndexFormatError);
    const tampered = Buffer.from(good);
    const at = good.indexOf('\n', 60) + 3;
    tampered.writeUInt8(tampered.readUInt8(at) ^ 1, at);
    expect(() => decodeProfile(tampered)).toThrow(/line \d+/);
    expect(() => encodeProfile('img', index.digest, [entries[0]?.id as string, entries[0]?.id as string])).toThrow(
      InvalidArgumentError,
    );
    const dup = good.toString().replace(entries[1]?.id as string, entries[0]?.id as string);
    expect(() => decodeProfile(Buffer.from(dup))).toThrow(/listed twice/);
    expect(() => decodeProfile(Buffer.from(good.toString().replace('blocks 3', 'blocks x')))).toThrow(/\(blocks\)/);
  });

  it('carries inline signatures like an index', () => {
    const key = generateSigningKey();
    const signed = appendSignature(
      encodeProfile('img', index.digest, []),
      parsePrivateKey(key.privateKeyPem),
      parsePublicKey(key.publicKeyPem),
    );
    const p = decodeProfile(signed);
    expect(verifyInlineSignatures(p.bytes, p.signatures)).toEqual([
      expect.objectContaining({ keyId: key.keyId, valid: true }),
    ]);
    const forged = Buffer.from(signed);
    forged.writeUInt8(forged.readUInt8(20) ^ 1, 20);
    expect(() => decodeProfile(forged)).toThrow(IndexFormatError);
  });
});
