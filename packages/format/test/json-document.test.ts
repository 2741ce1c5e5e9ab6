import { describe, expect, it } from 'vitest';
import { IndexFormatError } from '../src/errors.js';
import { isPositiveWholeNumber, readJsonDocument } from '../src/json-document.js';

const KIND = { format: 'thfc-test', version: 1 };
const read = (text: string) => readJsonDocument(text, 'http://m/x.json', 'test list', KIND);

describe('readJsonDocument', () => {
  it('refuses what is not a JSON object of its format and version, naming the source and the document', () => {
    expect(() => read('{')).toThrow(IndexFormatError);
    expect(() => read('{')).toThrow('http://m/x.json: test list: not JSON');
    expect(() => read('null')).toThrow('http://m/x.json: test list: not a JSON object');
    expect(() => read('{"format":"other","version":1}')).toThrow(
      'http://m/x.json: test list: format is not "thfc-test"',
    );
    expect(() => read('{"format":"thfc-test","version":2}')).toThrow(
      'http://m/x.json: test list: version 2 is not supported (this build reads 1)',
    );
  });

  it('gives the fields, unknown keys included, and maps an array of objects in order', () => {
    const doc = read('{"format":"thfc-test","version":1,"later":true,"items":[{"n":1},{"n":2}]}');
    expect(doc.fields.later).toBe(true);
    expect(doc.map('items', (e, i) => `${i}:${e.n}`)).toEqual(['0:1', '1:2']);
  });

  it('names an array that is missing and the first entry that is not an object, before later ones are decoded', () => {
    const doc = read('{"format":"thfc-test","version":1,"items":[{"n":1},3,{"n":"bad"}]}');
    expect(() => doc.map('others', () => 0)).toThrow('http://m/x.json: test list: "others" is not an array');
    const seen: number[] = [];
    expect(() => doc.map('items', (_e, i) => seen.push(i))).toThrow(
      'http://m/x.json: test list: items[1] is not an object',
    );
    expect(seen).toEqual([0]);
    expect(doc.bad('items: no').message).toBe('http://m/x.json: test list: items: no');
  });

  it('counts sizes as whole numbers of at least 1', () => {
    expect([1, 2 ** 40].every(isPositiveWholeNumber)).toBe(true);
    expect([0, -1, 1.5, 2 ** 53, '1', null, undefined].some(isPositiveWholeNumber)).toBe(false);
  });
});
