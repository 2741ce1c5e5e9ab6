import { readFile, stat } from 'node:fs/promises';
import { fsError } from '@thfc/format';
import { MemoryRegistry } from './memory-registry.js';
import { type MirrorsFileEntry, parseMirrorsFile } from './mirrors-file.js';
import type { MirrorRecord, Registry } from './registry.js';

/**
 * The embedded default registry: a static mirrors file (mirrors-file.ts),
 * so one machine runs DNS-Balance with no Redis.
 *
 * - Every mirror in the file is live, healthy and idle (load 0): the file
 *   says who serves, not how busy they are.
 * - Heartbeats register into a MemoryRegistry in this process only; a live
 *   heartbeat record replaces the file's record with the same id (so a mirror
 *   and a DNS server in one process see real load), and a heartbeat for a
 *   mirror not in the file adds it until it expires. Heartbeats from other
 *   processes are not seen: that is what Redis is for.
 * - The file is re-read when its modification time or size changes, so an
 *   edit (commenting a mirror out) takes effect without a restart. A file
 *   that has become unreadable or malformed makes list() fail; the caller
 *   (run-dns.ts) keeps answering from the last good list.
 */
export class FileRegistry implements Registry {
  private readonly heartbeats: MemoryRegistry;
  private readonly now: () => number;
  private cached: { key: string; entries: MirrorsFileEntry[] } | undefined;
  readonly file: string;

  constructor(components: { now?: () => number }, options: { file: string }) {
    this.now = components.now ?? Date.now;
    this.heartbeats = new MemoryRegistry({ now: this.now });
    this.file = options.file;
  }

  register(record: MirrorRecord, ttlMs: number, signal?: AbortSignal): Promise<void> {
    return this.heartbeats.register(record, ttlMs, signal);
  }

  unregister(id: string, signal?: AbortSignal): Promise<void> {
    return this.heartbeats.unregister(id, signal);
  }

  async list(signal?: AbortSignal): Promise<MirrorRecord[]> {
    const entries = await this.entries(signal);
    const live = new Map<string, MirrorRecord>();
    const updated = this.now();
    for (const e of entries) live.set(e.id, { ...e, load: 0, health: 'ok', updated });
    for (const r of await this.heartbeats.list(signal)) live.set(r.id, r);
    return [...live.values()];
  }

  /** Reads and parses the file, once per change. Throws typed errors naming the file (and line). */
  async entries(signal?: AbortSignal): Promise<MirrorsFileEntry[]> {
    signal?.throwIfAborted();
    let key: string;
    try {
      const st = await stat(this.file);
      key = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (e) {
      throw fsError(e, this.file);
    }
    if (this.cached?.key === key) return this.cached.entries;
    let text: string;
    try {
      text = await readFile(this.file, { encoding: 'utf8', signal });
    } catch (e) {
      signal?.throwIfAborted();
      throw fsError(e, this.file);
    }
    const entries = parseMirrorsFile(text, this.file);
    this.cached = { key, entries };
    return entries;
  }

  async close(): Promise<void> {
    await this.heartbeats.close();
  }

  toString(): string {
    return `file-registry(${this.file})`;
  }
}
