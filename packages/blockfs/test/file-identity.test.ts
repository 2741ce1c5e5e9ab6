import { statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeChange, identityOf, sameVersion } from '../src/io/file-identity.js';
import { tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('file identity', () => {
  it('is DEV INO SIZE CTIME MTIME in decimal, times in nanoseconds', async () => {
    const t = await tempDir('thfc-identity-');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'f');
    await writeFile(path, 'abc');
    const st = statSync(path, { bigint: true });
    expect(identityOf(st)).toBe(`${st.dev} ${st.ino} 3 ${st.ctimeNs} ${st.mtimeNs}`);
    expect(sameVersion(st, statSync(path, { bigint: true }))).toBe(true);
  });

  it('changes with a write in place (same inode) and with a rename over the name (another inode)', async () => {
    const t = await tempDir('thfc-identity-');
    cleanups.push(t.cleanup);
    const path = join(t.dir, 'f');
    await writeFile(path, 'abc');
    const a = statSync(path, { bigint: true });
    await writeFile(path, 'abd', { flag: 'r+' });
    const b = statSync(path, { bigint: true });
    expect(b.ino).toBe(a.ino);
    expect(sameVersion(a, b)).toBe(false);
    expect(identityOf(a)).not.toBe(identityOf(b));
    await writeFile(join(t.dir, 'g'), 'abd');
    await rename(join(t.dir, 'g'), path);
    const c = statSync(path, { bigint: true });
    expect(sameVersion(b, c)).toBe(false);
    expect(describeChange(identityOf(b), identityOf(c))).toMatch(new RegExp(`^inode ${b.ino} → ${c.ino}`));
  });

  it('describeChange names the fields that differ', () => {
    expect(describeChange('1 2 3 4 5', '1 2 3 4 5')).toBe('unchanged');
    expect(describeChange('1 2 3 4 5', '1 2 9 6 7')).toBe('size 3 → 9, change time, modification time');
    expect(describeChange('1 2 3 4 5', '8 2 3 4 5')).toBe('device');
  });
});
