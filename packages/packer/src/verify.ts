import { type CommandIo, formatBytes, progressFor } from '@thfc/cli';
import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  decodeVerified,
  verifyIndexSignatures,
} from '@thfc/format';
import { DirStore, readIndexFile } from '@thfc/store';
import { UsageError } from './errors.js';
import { assertStoreDir, listIndexes, resolveIndexArg } from './store-indexes.js';

export interface VerifyOptions {
  readonly store: string;
  /** Index files (paths, or names in the store); default every `*.idx` in the store. */
  readonly indexes?: readonly string[] | undefined;
}

export interface BlockProblem {
  readonly id: string;
  readonly problem: 'missing' | 'corrupt' | 'unreadable';
  readonly detail: string;
  /** Images (index names) that reference the block. */
  readonly images: readonly string[];
}

export interface VerifyReport {
  readonly store: string;
  readonly indexes: {
    readonly path: string;
    readonly name?: string;
    readonly error?: string;
    readonly signatures: number;
    readonly badSignatures: number;
  }[];
  readonly blocksChecked: number;
  readonly bytesChecked: number;
  readonly problems: readonly BlockProblem[];
  readonly ok: boolean;
  readonly seconds: number;
}

/** Parallel block checks; decode+hash is CPU-bound, so more than a few only queues. */
const CHECK_CONCURRENCY = 8;

/**
 * Checks that every block the indexes reference exists in the store, has the
 * stored size the index says, decodes, and hashes to its name. Reads the whole
 * store; changes nothing.
 */
export async function runVerify(options: VerifyOptions, io: CommandIo): Promise<VerifyReport> {
  const started = performance.now();
  await assertStoreDir(options.store, 'verify');
  const paths = options.indexes?.length
    ? await Promise.all(options.indexes.map((a) => resolveIndexArg(options.store, a)))
    : await listIndexes(options.store);
  if (paths.length === 0) throw new UsageError(`${options.store} holds no *.idx files: nothing to verify`);

  const { indexes, wanted } = await readIndexes(paths);
  const { problems, checked, bytes } = await checkBlocks(new DirStore(options.store), wanted, io);
  problems.sort((a, b) => a.id.localeCompare(b.id));
  const ok = problems.length === 0 && indexes.every((i) => !i.error && i.badSignatures === 0);
  return {
    store: options.store,
    indexes,
    blocksChecked: checked,
    bytesChecked: bytes,
    problems,
    ok,
    seconds: (performance.now() - started) / 1000,
  };
}

/** A block the indexes reference, and the names of the images that reference it. */
interface WantedBlock {
  readonly ref: BlockRef;
  readonly images: string[];
}

/**
 * Each index's signatures, and every distinct block the readable ones reference (one entry per id, codec and
 * sizes). An index that cannot be read is reported, not thrown.
 */
async function readIndexes(
  paths: readonly string[],
): Promise<{ indexes: VerifyReport['indexes'][number][]; wanted: Map<string, WantedBlock> }> {
  const indexes: VerifyReport['indexes'][number][] = [];
  const wanted = new Map<string, WantedBlock>();
  for (const path of paths) {
    try {
      const d = await readIndexFile(path);
      const sigs = verifyIndexSignatures(d);
      indexes.push({
        path,
        name: d.index.header.name,
        signatures: sigs.length,
        badSignatures: sigs.filter((s) => !s.valid).length,
      });
      for (const i of d.index.uniqueBlocks()) {
        const ref = d.index.ref(i) as BlockRef;
        const key = `${ref.id} ${ref.codec} ${ref.storedSize} ${ref.size}`;
        const w = wanted.get(key);
        if (w) w.images.push(d.index.header.name);
        else wanted.set(key, { ref, images: [d.index.header.name] });
      }
    } catch (e) {
      indexes.push({ path, error: (e as Error).message, signatures: 0, badSignatures: 0 });
    }
  }
  return { indexes, wanted };
}

/** Reads, decodes and hashes every wanted block, CHECK_CONCURRENCY at a time, with progress; a bad block is a problem, not a throw. */
async function checkBlocks(
  store: DirStore,
  wanted: ReadonlyMap<string, WantedBlock>,
  io: CommandIo,
): Promise<{ problems: BlockProblem[]; checked: number; bytes: number }> {
  let total = 0;
  for (const w of wanted.values()) total += w.ref.storedSize;
  const progress = progressFor(io, 'verify', total);
  const problems: BlockProblem[] = [];
  let checked = 0;
  let bytes = 0;
  const queue = [...wanted.values()];
  const worker = async () => {
    for (let w = queue.shift(); w; w = queue.shift()) {
      io.signal.throwIfAborted();
      try {
        const stored = await store.get(w.ref, { signal: io.signal });
        decodeVerified(w.ref, stored, store.toString());
      } catch (e) {
        if (io.signal.aborted) throw e;
        const problem =
          e instanceof BlockNotFoundError ? 'missing' : e instanceof BlockCorruptError ? 'corrupt' : 'unreadable';
        problems.push({ id: w.ref.id, problem, detail: (e as Error).message, images: w.images });
      }
      checked++;
      bytes += w.ref.storedSize;
      progress.update(bytes);
    }
  };
  try {
    await Promise.all(Array.from({ length: CHECK_CONCURRENCY }, worker));
  } finally {
    progress.finish();
  }
  return { problems, checked, bytes };
}

/**
 * The report for people: one line per unreadable index, index with invalid
 * signatures, and problem block, then a summary that counts and names the
 * indexes that failed as well as the blocks.
 */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  for (const i of r.indexes) {
    if (i.error) lines.push(`index ${i.path}: UNREADABLE: ${i.error}`);
    else if (i.badSignatures) lines.push(`index ${i.path}: ${i.badSignatures} of ${i.signatures} signatures INVALID`);
  }
  for (const p of r.problems) lines.push(`${p.problem} ${p.id} (${p.images.join(', ')}): ${p.detail}`);
  const unreadable = r.indexes.filter((i) => i.error).map((i) => i.path);
  const badSigned = r.indexes.filter((i) => !i.error && i.badSignatures).map((i) => i.path);
  const failedIndexes = [
    ...(unreadable.length ? [`${unreadable.length} unreadable: ${unreadable.join(', ')}`] : []),
    ...(badSigned.length ? [`${badSigned.length} with invalid signatures: ${badSigned.join(', ')}`] : []),
  ];
  const missing = r.problems.filter((p) => p.problem === 'missing').length;
  lines.push(
    `${r.ok ? 'ok' : 'FAILED'}: ${r.indexes.length} indexes${failedIndexes.length ? ` (${failedIndexes.join('; ')})` : ''}, ${r.blocksChecked} blocks (${formatBytes(r.bytesChecked)}) checked, ${missing} missing, ${r.problems.length - missing} corrupt or unreadable`,
  );
  return `${lines.join('\n')}`;
}
