import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BlockRef, decodeIndex, decodeProfile, encodeIndex } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { ProfileRecorder } from '../src/profile-recorder.js';

describe('ProfileRecorder', () => {
  it('records first touches in order, once each, bound to the index digest', async () => {
    const ids = ['a', 'b', 'c'].map((c) => c.repeat(40));
    const d = decodeIndex(
      encodeIndex(
        {
          version: 1,
          name: 'img',
          size: 3 * 4096,
          blockSize: 4096,
          hash: 'sha1',
          codec: 'zstd:3',
          created: '2026-01-01T00:00:00Z',
        },
        ids.map((id) => ({ id, codec: 'none' as const, storedSize: 4096 })),
      ),
    );
    const r = new ProfileRecorder(d.index, d.digest);
    const ref = (i: number) => d.index.ref(i) as BlockRef;
    r.observe(2, ref(2));
    r.observe(0, ref(0));
    r.observe(2, ref(2));
    expect(r.blocks).toBe(2);
    const path = join(tmpdir(), `thfc-profile-${process.pid}.profile`);
    await r.save(path);
    const p = decodeProfile(await readFile(path));
    expect(p.blocks).toEqual([ids[2], ids[0]]);
    expect(p.index).toBe(d.digest);
  });
});
