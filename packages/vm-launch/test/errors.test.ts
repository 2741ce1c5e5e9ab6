import { reportError } from '@thfc/cli';
import { CatalogFormatError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { EngineMissingError, MountFailedError } from '../src/errors.js';
import { VM_EXIT } from '../src/exit-codes.js';

/** What thfc-vm prints and exits with for E. */
function report(e: unknown): { code: number; err: string } {
  let err = '';
  const code = reportError('thfc-vm', e, { write: (s: string) => (err += s) });
  return { code, err };
}

describe("thfc-vm's errors carry their exit codes", () => {
  it.each([
    [new EngineMissingError('qemu-img', 'apt install qemu-utils'), VM_EXIT.ENGINE_MISSING],
    [new CatalogFormatError('catalog.json', 'images[2].boot.mem', 'not a number'), VM_EXIT.DATA],
    // httpstorged's own code, passed through: 3 input, 4 bad data, 5 mirrors unreachable.
    [new MountFailedError('httpstorged: mirrors unreachable', 5), 5],
    [new MountFailedError('httpstorged: untrusted index', 4), 4],
  ])('%s', (e, code) => {
    expect(report(e)).toEqual({ code, err: `thfc-vm: ${e.message}\n` });
  });
});
