import { ThfcError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { EngineMissingError, MountFailedError } from '../src/errors.js';

describe('errors', () => {
  it('carry stable codes and the fields that decide the exit code', () => {
    const e = new EngineMissingError('xl', 'Xen is not installed');
    expect(e).toBeInstanceOf(ThfcError);
    expect([e.code, e.tool, e.message]).toEqual(['ERR_ENGINE_MISSING', 'xl', 'xl not found: Xen is not installed']);
    const m = new MountFailedError('cannot mount', 4);
    expect([m.code, m.exitCode]).toEqual(['ERR_MOUNT_FAILED', 4]);
  });
});
