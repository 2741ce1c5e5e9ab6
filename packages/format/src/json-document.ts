import { IndexFormatError } from './errors.js';

/**
 * A small versioned JSON document of thfc, `{"format":"thfc-…","version":N,…}`
 * (the store listing, a version list), as its strict decoder reads it. Every
 * error is an IndexFormatError naming the document, where it came from and
 * the bad field. Keys a decoder does not ask for are ignored, so that a later
 * release can add fields without a new version.
 */
export interface JsonDocument {
  /** The document's top-level keys. */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The error for a bad field: `SOURCE: WHAT: why`. */
  bad(why: string): IndexFormatError;
  /**
   * Each entry of the array under `key`, in order, through `decode`; one
   * that is not an object is named `key[i]`.
   */
  map<T>(key: string, decode: (entry: Readonly<Record<string, unknown>>, i: number) => T): T[];
}

/**
 * Parses `text` as the document `what` (e.g. "store listing") of `format`
 * and `version`, read from `source`; throws unless it is a JSON object of
 * that format and version.
 */
export function readJsonDocument(
  text: string,
  source: string,
  what: string,
  expected: { readonly format: string; readonly version: number },
): JsonDocument {
  const bad = (why: string) => new IndexFormatError(`${what}: ${why}`, undefined, undefined, source);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw bad('not a JSON object');
  const fields = doc as Record<string, unknown>;
  if (fields.format !== expected.format) throw bad(`format is not "${expected.format}"`);
  if (fields.version !== expected.version) {
    throw bad(`version ${String(fields.version)} is not supported (this build reads ${expected.version})`);
  }
  return {
    fields,
    bad,
    map(key, decode) {
      const entries = fields[key];
      if (!Array.isArray(entries)) throw bad(`"${key}" is not an array`);
      return entries.map((entry: unknown, i) => {
        if (typeof entry !== 'object' || entry === null) throw bad(`${key}[${i}] is not an object`);
        return decode(entry as Record<string, unknown>, i);
      });
    },
  };
}

/** A size in bytes of something that exists: a whole number of at least 1. */
export function isPositiveWholeNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}
