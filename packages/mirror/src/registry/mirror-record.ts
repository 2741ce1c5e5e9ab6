import { InvalidArgumentError } from '@thfc/format';
import type { MirrorRecord } from './registry.js';

/**
 * The one check between bytes some other process wrote (a Redis value, a
 * line of the mirrors file) and a MirrorRecord the DNS zone trusts. Strict:
 * a record that fails is refused whole, with the field named, never patched.
 */

/** Region names are matched against the networks file and become no DNS names; lower-case words keep both simple. */
const REGION = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** A record id is a key suffix and a log word: printable, no spaces, bounded. */
const ID = /^[\x21-\x7e]{1,200}$/;

/** The record id a mirror gets unless it names one: `host:port` of its URL, as registry.ts documents. */
export function mirrorIdFromUrl(url: string): string {
  const u = parseMirrorUrl(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port}`;
}

/** An http(s) base URL with a host, normalised to end in `/` (it names the directory holding blocks/). */
export function normaliseMirrorUrl(url: string): string {
  const u = parseMirrorUrl(url);
  u.hash = '';
  u.search = '';
  if (!u.pathname.endsWith('/')) u.pathname = `${u.pathname}/`;
  return u.href;
}

function parseMirrorUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`url: "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InvalidArgumentError(`url: "${url}" is not http(s)`);
  }
  if (!u.hostname) throw new InvalidArgumentError(`url: "${url}" has no host`);
  if (u.username || u.password) throw new InvalidArgumentError(`url: "${url}" carries credentials`);
  return u;
}

/** Checks every field; returns a fresh, frozen record with a normalised URL. */
export function validateMirrorRecord(value: unknown): MirrorRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError('mirror record: not a JSON object');
  }
  const v = value as Record<string, unknown>;
  const bad = (field: string, why: string) => new InvalidArgumentError(`mirror record: ${field} ${why}`);
  if (typeof v.id !== 'string' || !ID.test(v.id)) throw bad('id', 'must be 1–200 printable characters');
  if (typeof v.url !== 'string') throw bad('url', 'must be a string');
  const url = normaliseMirrorUrl(v.url);
  if (typeof v.region !== 'string' || !REGION.test(v.region)) {
    throw bad('region', `must be a lower-case word (a-z, 0-9, - or _), not ${JSON.stringify(v.region)}`);
  }
  if (typeof v.capacity !== 'number' || !Number.isInteger(v.capacity) || v.capacity < 1) {
    throw bad('capacity', `must be a whole number >= 1, not ${JSON.stringify(v.capacity)}`);
  }
  if (typeof v.load !== 'number' || !Number.isFinite(v.load) || v.load < 0) {
    throw bad('load', `must be a number >= 0, not ${JSON.stringify(v.load)}`);
  }
  if (v.health !== 'ok' && v.health !== 'degraded') {
    throw bad('health', `must be "ok" or "degraded", not ${JSON.stringify(v.health)}`);
  }
  if (typeof v.updated !== 'number' || !Number.isFinite(v.updated) || v.updated < 0) {
    throw bad('updated', 'must be a time in ms since the epoch');
  }
  return Object.freeze({
    id: v.id,
    url,
    region: v.region,
    capacity: v.capacity,
    load: v.load,
    health: v.health,
    updated: v.updated,
  });
}

/** A record as stored in Redis: one JSON object. */
export function encodeMirrorRecord(record: MirrorRecord): string {
  return JSON.stringify(validateMirrorRecord(record));
}

export function decodeMirrorRecord(text: string): MirrorRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('mirror record: not valid JSON');
  }
  return validateMirrorRecord(value);
}
