import { describe, expect, it } from 'vitest';
import { BusyError, CatalogFormatError, EXIT, exitCodeOf, IncompleteError, UsageError } from '../src/errors.js';

describe('exitCodeOf', () => {
  it('a busy resource left as it was is EX_TEMPFAIL (75); work left half done is an environment failure (5)', () => {
    expect(exitCodeOf(new BusyError('/mnt is busy'))).toBe(EXIT.BUSY);
    expect(EXIT.BUSY).toBe(75);
    expect(exitCodeOf(new IncompleteError('the daemon is still running'))).toBe(EXIT.IO);
    expect(exitCodeOf(new UsageError('x'))).toBe(EXIT.USAGE);
    expect(exitCodeOf(new Error('untyped'))).toBe(EXIT.SOFTWARE);
  });

  it('each error carries its stable code', () => {
    expect(new BusyError('x').code).toBe('ERR_BUSY');
    expect(new IncompleteError('x').code).toBe('ERR_INCOMPLETE');
    const c = new CatalogFormatError('http://m/catalog.json', 'images[0].name', 'bad');
    expect([c.code, c.message]).toEqual(['ERR_CATALOG_FORMAT', 'http://m/catalog.json: images[0].name: bad']);
  });
});
