import { describe, expect, it } from 'vitest';
import {
  BlockCorruptError,
  BlockNotFoundError,
  BusyError,
  CatalogFormatError,
  CheckFailedError,
  EXIT,
  exitCodeOf,
  fsError,
  IncompleteError,
  IndexFormatError,
  InputError,
  InterruptedError,
  InvalidArgumentError,
  LineFormatError,
  MirrorUnavailableError,
  PinRefusedError,
  SignatureError,
  StoreFullError,
  StoreIoError,
  type ThfcError,
  TrustRefusedError,
  TrustStoreFormatError,
  UsageError,
} from '../src/errors.js';

/** Every shared error class, with the exit code a command that meets it ends with (docs: each command's page). */
const TABLE: [ThfcError, number][] = [
  [new CheckFailedError('2 blocks missing'), 1],
  [new UsageError('store is an index'), 2],
  [new InvalidArgumentError('block size 3K'), 2],
  [new InputError('x.img: no such file'), 3],
  [new IndexFormatError('bad digest', 3, 'digest'), 4],
  [new TrustStoreFormatError('bad key', 1, 'key'), 4],
  [new CatalogFormatError('catalog.json', 'images[2].boot.mem', 'not a number'), 4],
  [new SignatureError('does not verify'), 4],
  [new TrustRefusedError('revoked', 'revoked'), 4],
  [new PinRefusedError('another digest'), 4],
  [new BlockNotFoundError('ab12', 'dir'), 4],
  [new BlockCorruptError('ab12', 'dir', 'hash'), 4],
  [new StoreFullError('no space'), 5],
  [new StoreIoError('EIO'), 5],
  [new MirrorUnavailableError('http://m/', 'timeout'), 5],
  [new IncompleteError('the daemon is still running'), 5],
  [new InterruptedError('SIGINT'), 130],
  [new BusyError('/mnt is busy'), 75],
];

describe('exitCodeOf', () => {
  it.each(TABLE.map(([e, code]) => [e.name, code, e] as const))('%s exits %i', (_name, code, e) => {
    expect(exitCodeOf(e)).toBe(code);
    expect(e.exitCode).toBe(code);
  });

  it('an untyped error is a bug (70); the table keeps its values', () => {
    expect(exitCodeOf(new Error('untyped'))).toBe(EXIT.SOFTWARE);
    expect(exitCodeOf('a string')).toBe(EXIT.SOFTWARE);
    expect(EXIT).toMatchObject({ CHECK_FAILED: 1, USAGE: 2, INPUT: 3, DATA: 4, IO: 5, BUSY: 75, INTERRUPTED: 130 });
  });

  it("an fs error becomes the class a user can act on, and keeps that class's code", () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    expect(exitCodeOf(fsError(errno('ENOENT'), 'x'))).toBe(EXIT.INPUT);
    expect(exitCodeOf(fsError(errno('EISDIR'), 'x'))).toBe(EXIT.USAGE);
    expect(exitCodeOf(fsError(errno('ENOSPC'), 'x'))).toBe(EXIT.IO);
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
