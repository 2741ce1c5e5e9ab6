import { describe, expect, it } from 'vitest';
import { isMounted } from '../src/mount-table.js';

describe('isMounted', () => {
  it('knows / and /proc, and that a plain directory is not a mount point', async () => {
    expect(await isMounted('/')).toBe(true);
    expect(await isMounted('/proc')).toBe(true);
    expect(await isMounted('/proc/self')).toBe(false);
    expect(await isMounted('/no/such/dir')).toBe(false);
  });
});
