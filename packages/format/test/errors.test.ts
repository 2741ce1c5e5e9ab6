import { describe, expect, it } from 'vitest';
import {
  BusyError,
  CatalogFormatError,
  EXIT,
  exitCodeOf,
  IncompleteError,
  IndexFormatError,
  LineFormatError,
  TrustStoreFormatError,
  UsageError,
} from '../src/errors.js';

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

describe('LineFormatError', () => {
  it('is the base of the line-format errors, each with its own code, naming file, line and field', () => {
    const errors = [
      new IndexFormatError('bad image size 0', 3, 'size'),
      new TrustStoreFormatError('bad key', 2, 'key', '/etc/thfc/trust'),
    ];
    for (const e of errors) expect(e).toBeInstanceOf(LineFormatError);
    expect(errors.map((e) => [e.code, e.message, e.line, e.field])).toEqual([
      ['ERR_INDEX_FORMAT', 'index line 3 (size): bad image size 0', 3, 'size'],
      ['ERR_TRUST_STORE_FORMAT', '/etc/thfc/trust: line 2 (key): bad key', 2, 'key'],
    ]);
    expect(new IndexFormatError('empty', undefined).message).toBe('index: empty');
    expect(new IndexFormatError('empty', undefined, undefined, 'x.idx').message).toBe('x.idx: empty');
    expect(new TrustStoreFormatError('empty', undefined).message).toBe('trust store: empty');
    expect(exitCodeOf(errors[1])).toBe(EXIT.DATA);
  });
});
