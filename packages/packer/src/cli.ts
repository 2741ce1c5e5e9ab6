#!/usr/bin/env node
import {
  EXIT,
  exitCodeOf,
  InvalidArgumentError,
  parseCodecSpec,
  parseHashAlgorithm,
  parseSize,
  ThfcError,
} from '@thfc/format';
import { Command, CommanderError, Option } from 'commander';
import type { CommandIo } from './command-io.js';
import { runDiff } from './diff.js';
import { CheckFailedError, UsageError } from './errors.js';
import { DEFAULT_GC_GRACE_SECONDS, runGc } from './gc.js';
import { formatBytes, formatRate } from './human-units.js';
import { runInspect } from './inspect.js';
import { runKeygen } from './keygen.js';
import { runPack } from './pack.js';
import { runProfileAdd } from './profile.js';
import { runSign } from './sign.js';
import { runUnpack } from './unpack.js';
import { runVerify } from './verify.js';

/**
 * thfc-pack: the publisher CLI. A table of commands over typed run*()
 * functions; this file is the only one that touches `process`, and the one
 * place errors become exit codes and one-line messages.
 */

const controller = new AbortController();
let interrupts = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // First signal: stop cleanly (temp files removed, summary of what is kept). Second: leave now.
    if (++interrupts > 1) process.exit(EXIT.INTERRUPTED);
    controller.abort(new Error(`interrupted by ${sig}`));
  });
}

function io(json: boolean): CommandIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
    progress: !json && process.stderr.isTTY === true,
    env: process.env,
  };
}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

const asSize = (flag: string) => (v: string) => {
  try {
    return parseSize(v);
  } catch (e) {
    throw new InvalidArgumentError(`${flag}: ${(e as Error).message}`);
  }
};

const program = new Command('thfc-pack')
  .description('Publish raw disk images as content-addressed block stores with a signed index (thfc format v1).')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('pack')
  .description('split IMAGE into blocks, store the new ones in STORE, and write STORE/NAME.idx last')
  .argument('<image>', 'raw disk image file or block device, or - for stdin')
  .requiredOption('-s, --store <dir>', 'store directory (created if missing)')
  .option('-n, --name <name>', 'image name (default: IMAGE without its .img/.raw/.iso extension)')
  .option('-b, --block-size <size>', 'block size, a power of two from 4K to 4M', '256K')
  .option('-c, --codec <codec>', 'zstd[:1-19], zlib[:1-9] or none', 'zstd:3')
  .addOption(new Option('--hash <alg>', 'block naming hash').choices(['sha1', 'sha256']).default('sha1'))
  .option('--sign <keyfile>', 'sign the index with this private key')
  .option('--previous <index>', "record this earlier index's digest as the previous version")
  .option('-j, --workers <n>', 'worker threads (default: one per core)')
  .option('--json', 'print the summary as JSON')
  .action(async (image: string, o) => {
    const s = await runPack(
      {
        image,
        store: o.store,
        name: o.name,
        blockSize: asSize('--block-size')(o.blockSize),
        codec: parseCodecSpec(o.codec),
        hash: parseHashAlgorithm(o.hash),
        sign: o.sign,
        previous: o.previous,
        workers: o.workers === undefined ? undefined : positiveInt('--workers', o.workers),
      },
      io(!!o.json),
    );
    print(!!o.json, s, () =>
      [
        `packed ${s.name} -> ${s.index}${s.signedBy ? ` (signed by ${s.signedBy})` : ''}`,
        `  blocks  ${s.blocks} total, ${s.zeroBlocks} zero, ${s.uniqueBlocks} unique, ${s.newBlocks} new`,
        `  bytes   ${formatBytes(s.bytesIn)} in, ${formatBytes(s.storedBytes)} stored (ratio ${s.ratio.toFixed(2)}), ${formatBytes(s.newBytes)} new`,
        `  time    ${s.seconds.toFixed(2)} s, ${formatRate(s.bytesIn, s.seconds)}`,
        `  digest  ${s.digest}`,
      ].join('\n'),
    );
  });

program
  .command('unpack')
  .description('rebuild the image byte for byte from its index, verifying every block')
  .argument('<index>', 'STORE/NAME.idx')
  .argument('<out>', 'output file (zero blocks become holes), or - for stdout')
  .option('-s, --store <dir>', "where the blocks are (default: the index's directory)")
  .option('-f, --force', 'overwrite OUT if it exists')
  .option('--json', 'print the summary as JSON')
  .action(async (index: string, out: string, o) => {
    const s = await runUnpack({ index, out, store: o.store, force: o.force }, io(!!o.json || out === '-'));
    if (out === '-') {
      if (o.json) process.stderr.write(`${JSON.stringify(s)}\n`);
      return;
    }
    print(
      !!o.json,
      s,
      () =>
        `unpacked ${s.name} -> ${s.out}: ${formatBytes(s.bytes)}, ${s.blocks} blocks (${s.zeroBlocks} zero), ${s.seconds.toFixed(2)} s`,
    );
  });

program
  .command('verify')
  .description('check that every block the indexes reference exists and hashes right')
  .argument('<store>', 'store directory')
  .argument('[indexes...]', 'index files to check (default: every STORE/*.idx)')
  .option('--json', 'print the report as JSON')
  .action(async (store: string, indexes: string[], o) => {
    const r = await runVerify({ store, indexes }, io(!!o.json));
    print(!!o.json, r, () => {
      const lines: string[] = [];
      for (const i of r.indexes) {
        if (i.error) lines.push(`index ${i.path}: UNREADABLE: ${i.error}`);
        else if (i.badSignatures)
          lines.push(`index ${i.path}: ${i.badSignatures} of ${i.signatures} signatures INVALID`);
      }
      for (const p of r.problems) lines.push(`${p.problem} ${p.id} (${p.images.join(', ')}): ${p.detail}`);
      lines.push(
        `${r.ok ? 'ok' : 'FAILED'}: ${r.indexes.length} indexes, ${r.blocksChecked} blocks (${formatBytes(r.bytesChecked)}) checked, ${r.problems.filter((p) => p.problem === 'missing').length} missing, ${r.problems.filter((p) => p.problem !== 'missing').length} corrupt or unreadable`,
      );
      return lines.join('\n');
    });
    if (!r.ok) throw new CheckFailedError('', { cause: 'reported' });
  });

program
  .command('inspect')
  .description('show an index: header, counts, digest and signature status')
  .argument('<index>', 'NAME.idx')
  .option('--trust <pubkey...>', 'public key files (or base64 keys) to check the signatures against')
  .option('--json', 'print the report as JSON')
  .action(async (index: string, o) => {
    const r = await runInspect({ index, trust: o.trust });
    print(!!o.json, r, () => {
      const h = r.header;
      const lines = [
        `index     ${r.path} (${formatBytes(r.indexBytes)})`,
        `format    thfc-index ${h.version}`,
        `name      ${h.name}`,
        `size      ${h.size} (${formatBytes(h.size)})`,
        `blocks    ${r.blocks} of ${formatBytes(h.blockSize)}: ${r.zeroBlocks} zero, ${r.uniqueBlocks} unique, ${formatBytes(r.storedBytes)} stored`,
        `hash      ${h.hash}`,
        `codec     ${h.codec}`,
        `created   ${h.created}`,
        ...(h.previous ? [`previous  ${h.previous}`] : []),
        `digest    ${r.digest}`,
      ];
      if (r.signatures.length === 0) lines.push('signature none (unsigned)');
      for (const s of r.signatures) {
        const trust = s.trusted === undefined ? '' : s.trusted ? ', trusted' : ', NOT TRUSTED';
        lines.push(`signature ed25519 ${s.keyId} ${s.valid ? 'valid' : 'INVALID'}${trust} (key ${s.publicKey})`);
      }
      return lines.join('\n');
    });
    if (r.signatures.some((s) => !s.valid)) throw new CheckFailedError('', { cause: 'reported' });
    if (r.trusted === false) throw new CheckFailedError('', { cause: 'reported' });
  });

program
  .command('diff')
  .description('list the blocks (and bytes) a client holding OLD must fetch for NEW')
  .argument('<old>', 'OLD.idx')
  .argument('<new>', 'NEW.idx')
  .option('--json', 'print the report as JSON')
  .action(async (oldIdx: string, newIdx: string, o) => {
    const r = await runDiff({ old: oldIdx, new: newIdx });
    print(!!o.json, r, () =>
      [
        ...r.fetch.map((f) => `${f.id} ${f.storedSize}`),
        `${r.fetch.length} blocks, ${formatBytes(r.fetchBytes)} to fetch; ${r.reusedBlocks} of ${r.newUniqueBlocks} blocks (${formatBytes(r.newStoredBytes - r.fetchBytes)}) already in OLD`,
      ].join('\n'),
    );
  });

program
  .command('gc')
  .description('list blocks no index in STORE references (a dry run unless --delete)')
  .argument('<store>', 'store directory')
  .option('--delete', 'delete them')
  .option('--grace <seconds>', 'leave files younger than this alone', String(DEFAULT_GC_GRACE_SECONDS))
  .option('--json', 'print the report as JSON')
  .action(async (store: string, o) => {
    const r = await runGc({ store, delete: !!o.delete, graceSeconds: nonNegativeInt('--grace', o.grace) });
    print(!!o.json, r, () =>
      [
        ...r.unreferenced.map((f) => `${r.deleted ? 'deleted' : 'unreferenced'} ${f.path} ${f.size}`),
        `${r.unreferenced.length} files, ${formatBytes(r.unreferencedBytes)} ${r.deleted ? 'deleted' : 'unreferenced (dry run: --delete removes them)'}; ${r.referencedBlocks} blocks referenced by ${r.indexes} indexes${r.tooYoung ? `; ${r.tooYoung} younger than the grace period kept` : ''}`,
      ].join('\n'),
    );
  });

program
  .command('keygen')
  .description('write an Ed25519 private key (mode 0600) to KEYFILE and its public key to KEYFILE.pub')
  .argument('<keyfile>', 'private key file to create')
  .option('-f, --force', 'replace an existing key')
  .option('--json', 'print the result as JSON')
  .action(async (keyFile: string, o) => {
    const r = await runKeygen({ keyFile, force: o.force });
    print(!!o.json, r, () => `wrote ${r.keyFile} and ${r.publicKeyFile}\nkey id ${r.keyId}\npublic key ${r.publicKey}`);
  });

program
  .command('sign')
  .description('add a signature to an index (several keys may sign, for rotation)')
  .argument('<index>', 'NAME.idx')
  .requiredOption('-k, --key <keyfile>', 'private key file')
  .option('--json', 'print the result as JSON')
  .action(async (index: string, o) => {
    const r = await runSign({ index, key: o.key });
    print(!!o.json, r, () =>
      r.added
        ? `signed ${r.index} with ${r.keyId} (${r.signatures} signatures)`
        : `${r.index} is already signed by ${r.keyId}`,
    );
  });

const profile = program
  .command('profile')
  .description('boot profiles: the blocks a guest reads first, replayed by clients at mount');
profile
  .command('add')
  .description('check a recorded profile against its index, sign it, and publish it as STORE/NAME.profile')
  .argument('<index>', 'STORE/NAME.idx')
  .argument('<profile>', 'a profile recorded by httpstorged --record-profile')
  .option('-k, --key <keyfile>', 'sign with this private key (use the index signing key)')
  .option('--json', 'print the result as JSON')
  .action(async (index: string, file: string, o) => {
    const r = await runProfileAdd({ index, profile: file, key: o.key });
    print(
      !!o.json,
      r,
      () => `published ${r.path}: ${r.blocks} blocks${r.signedBy ? `, signed by ${r.signedBy}` : ' (unsigned)'}`,
    );
  });

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive whole number, not "${v}"`);
  return n;
}

function nonNegativeInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number, not "${v}"`);
  return n;
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = report(e);
}

function report(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  if (e instanceof CheckFailedError && e.cause === 'reported') return EXIT.CHECK_FAILED;
  if (e instanceof ThfcError) {
    process.stderr.write(`thfc-pack: ${e.message}\n`);
    return exitCodeOf(e);
  }
  process.stderr.write(`thfc-pack: internal error (please report): ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.SOFTWARE;
}
