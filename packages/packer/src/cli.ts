#!/usr/bin/env node
import {
  count,
  formatBytes,
  formatRate,
  ignoreClosedOutput,
  oneLineParseErrors,
  processShell,
  reportError,
  size,
} from '@thfc/cli';
import { EXIT, parseCodecSpec, parseHashAlgorithm } from '@thfc/format';
import { Command, Option } from 'commander';
import { runCatalogAdd, runCatalogRemove } from './catalog.js';
import { runDiff } from './diff.js';
import { CheckFailedError } from './errors.js';
import { DEFAULT_GC_GRACE_SECONDS, runGc } from './gc.js';
import { runInspect } from './inspect.js';
import { runKeyAdd, runKeyList, runKeyRevoke, runKeyRotate } from './key-commands.js';
import { runKeygen } from './keygen.js';
import { runPack } from './pack.js';
import { runProfileAdd } from './profile.js';
import { DEFAULT_KEEP_DAYS, DEFAULT_KEEP_VERSIONS } from './retention.js';
import { runSign } from './sign.js';
import { runUnpack } from './unpack.js';
import { formatVerifyReport, runVerify } from './verify.js';
import { runPublish, runVersions } from './version-commands.js';

/**
 * thfc-pack: the publisher CLI. A table of commands over typed run*()
 * functions; this file is the only one that touches `process`, and the one
 * place errors become exit codes and one-line messages.
 */

// First signal: stop cleanly (temp files removed, whole blocks only, registry record dropped). Second: leave now.
const shell = processShell();
const io = shell.io;

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

const program = new Command('thfc-pack')
  .description('Publish raw disk images as content-addressed block stores with a signed index (thfc format v1).')
  .version('0.1.0')
  // Root options only before the command word, so `publish --version DIGEST` is the subcommand's.
  .enablePositionalOptions()
  .exitOverride();

program
  .command('pack')
  .description('split IMAGE into blocks, store the new ones in STORE, and write STORE/NAME.idx last')
  .argument('<image>', 'disk image file (raw, or qcow2 and other qemu formats) or block device, or - for stdin')
  .requiredOption('-s, --store <dir>', 'store directory (created if missing)')
  .option('-n, --name <name>', 'image name (default: IMAGE without its .img/.raw/.iso extension)')
  .option('-b, --block-size <size>', 'block size, a power of two from 4K to 4M', '256K')
  .option('-c, --codec <codec>', 'zstd[:1-19], zlib[:1-9] or none', 'zstd:3')
  .addOption(new Option('--hash <alg>', 'block naming hash').choices(['sha1', 'sha256']).default('sha1'))
  .option('--sign <keyfile>', 'sign the index with this private key')
  .option('--previous <index>', "record this earlier index's digest as the previous version")
  .option('-j, --workers <n>', 'worker threads (default: one per core)')
  .option('--input-format <fmt>', 'raw, qcow2, vmdk, … (default: what qemu-img info says)', 'auto')
  .option('--json', 'print the summary as JSON')
  .action(async (image: string, o) => {
    const s = await runPack(
      {
        image,
        store: o.store,
        name: o.name,
        blockSize: size('--block-size')(o.blockSize),
        codec: parseCodecSpec(o.codec),
        hash: parseHashAlgorithm(o.hash),
        sign: o.sign,
        previous: o.previous,
        workers: o.workers === undefined ? undefined : count('--workers', 1)(o.workers),
        inputFormat: o.inputFormat,
      },
      io(!!o.json),
    );
    print(!!o.json, s, () =>
      [
        `packed ${s.name} -> ${s.index}${s.signedBy ? ` (signed by ${s.signedBy})` : ''}`,
        `  blocks  ${s.blocks} total, ${s.zeroBlocks} zero, ${s.uniqueBlocks} unique, ${s.newBlocks} new`,
        `  input   ${s.inputFormat}, ${formatBytes(s.bytesRead)} read, ${formatBytes(s.bytesIn - s.bytesRead)} of holes skipped`,
        `  bytes   ${formatBytes(s.bytesIn)} in, ${formatBytes(s.storedBytes)} stored (ratio ${s.ratio.toFixed(2)}), ${formatBytes(s.newBytes)} new`,
        `  time    ${s.seconds.toFixed(2)} s, ${formatRate(s.bytesIn, s.seconds)}`,
        `  digest  ${s.digest}`,
        `  version ${s.version}`,
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
    print(!!o.json, r, () => formatVerifyReport(r));
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
  .description('list blocks and retired versions nothing kept references (a dry run unless --delete)')
  .argument('<store>', 'store directory')
  .option('--delete', 'delete them')
  .option('--grace <seconds>', 'leave files younger than this alone', String(DEFAULT_GC_GRACE_SECONDS))
  .option('--keep <n>', "keep each image's newest N retained versions", String(DEFAULT_KEEP_VERSIONS))
  .option('--keep-days <days>', 'and every version younger than DAYS', String(DEFAULT_KEEP_DAYS))
  .option('--json', 'print the report as JSON')
  .action(async (store: string, o) => {
    const r = await runGc({
      store,
      delete: !!o.delete,
      graceSeconds: count('--grace', 0)(o.grace),
      keep: count('--keep', 0)(o.keep),
      keepDays: count('--keep-days', 0)(o.keepDays),
      signal: shell.signal,
    });
    print(!!o.json, r, () =>
      [
        ...r.versions.flatMap((v) => [
          ...v.kept.map((k) => `keep ${v.name} ${k.created} ${k.digest.slice(0, 19)} (${KEEP_WHY[k.why]})`),
          ...v.retired.map(
            (x) => `${r.deleted ? 'retired' : 'retire'} ${v.name} ${x.created} ${x.digest.slice(0, 19)}`,
          ),
        ]),
        ...r.unreferenced.map((f) => `${r.deleted ? 'deleted' : 'unreferenced'} ${f.path} ${f.size}`),
        `${r.unreferenced.length} files, ${formatBytes(r.unreferencedBytes)} ${r.deleted ? 'deleted' : 'unreferenced (dry run: --delete removes them)'}; ${r.referencedBlocks} blocks referenced by ${r.indexes} indexes and ${r.versions.reduce((n, v) => n + v.kept.length, 0)} kept versions (newest ${r.policy.keep}, or younger than ${r.policy.keepDays} days)${r.tooYoung ? `; ${r.tooYoung} younger than the grace period kept` : ''}`,
      ].join('\n'),
    );
  });

const KEEP_WHY = { latest: 'NAME.idx names it', newest: 'among the newest --keep', recent: 'younger than --keep-days' };

program
  .command('versions')
  .description("list an image's retained versions, newest first (* marks the one NAME.idx names)")
  .argument('<store>', 'store directory')
  .argument('<name>', 'image name')
  .option('--json', 'print the report as JSON')
  .action(async (store: string, name: string, o) => {
    const r = await runVersions({ store, name });
    print(!!o.json, r, () =>
      r.versions
        .map(
          (v) =>
            `${v.latest ? '*' : ' '} ${v.created}  ${v.digest}  ${formatBytes(v.size)}  ${v.signedBy.length ? `signed by ${v.signedBy.join(', ')}` : 'unsigned'}`,
        )
        .join('\n'),
    );
  });

program
  .command('publish')
  .description('make a retained version the one NAME.idx names (a rollback)')
  .argument('<store>', 'store directory')
  .argument('<name>', 'image name')
  .requiredOption('--version <digest>', 'sha256:<hex>, or a unique prefix of 12+ hex digits')
  .option('--json', 'print the result as JSON')
  .action(async (store: string, name: string, o) => {
    const r = await runPublish({ store, name, version: o.version }, shell.signal);
    print(!!o.json, r, () => `published ${name}: ${r.version.digest} (created ${r.version.created})`);
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

const key = program
  .command('key')
  .description('publisher keys in a trust-store file that clients install (docs/TRUST.md)');
key
  .command('list')
  .description("list a trust store's keys (file or directory) with their state now: trusted, expired or revoked")
  .argument('<trust-store...>', 'trust-store files or directories')
  .option('--json', 'print the report as JSON')
  .action(async (paths: string[], o) => {
    const r = await runKeyList({ paths });
    print(!!o.json, r, () =>
      [
        ...r.keys.map(
          (k) =>
            `${k.keyId} ${k.state.padEnd(7)} expires ${k.expires ?? 'never'} scope ${k.scope?.join(',') ?? '*'}${k.label ? ` label ${k.label}` : ''} (${k.source})`,
        ),
        ...r.revocations.map((v) => `${v.keyId} revoked (${v.source})`),
        `${r.keys.length} keys, ${r.revocations.length} revocations`,
      ].join('\n'),
    );
  });
key
  .command('add')
  .description('grant a key in a trust-store file (created if missing); re-adding a key updates its limits')
  .argument('<trust-store>', 'trust-store file')
  .argument('<key>', 'public or private key file, or base64 public key')
  .option('--expires <date>', 'refuse its signatures from this UTC date (2027-01-31 or 2027-01-31T12:00:00Z)')
  .option('--scope <globs>', 'image names it may sign, comma-separated globs (default: any)')
  .option('--label <word>', 'a word saying what the key is for')
  .option('--json', 'print the result as JSON')
  .action(async (trustStore: string, k: string, o) => {
    const r = await runKeyAdd({ trustStore, key: k, expires: o.expires, scope: o.scope?.split(','), label: o.label });
    print(!!o.json, r, () => `granted ${r.keyId} in ${r.trustStore}`);
  });
key
  .command('revoke')
  .description("revoke a key in a trust-store file: its grants go, a revoke line overrides any other file's grant")
  .argument('<trust-store>', 'trust-store file (created if missing)')
  .argument('<key>', 'key id, base64 public key, or a public or private key file')
  .option('--json', 'print the result as JSON')
  .action(async (trustStore: string, k: string, o) => {
    const r = await runKeyRevoke({ trustStore, key: k });
    print(
      !!o.json,
      r,
      () =>
        `revoked ${r.keyId} in ${r.trustStore}${r.removedGrants ? ` (${r.removedGrants} grant removed)` : ''}${r.added ? '' : ' (already revoked)'}`,
    );
  });
key
  .command('rotate')
  .description('sign INDEXES with the old and a new key, and grant the new key in the trust store')
  .argument('<old-key>', 'current private key file')
  .argument('<new-key>', 'new private key file (generated with NEW-KEY.pub if missing)')
  .argument('[indexes...]', 'index files to sign with both keys')
  .option('--trust-store <file>', 'trust-store file to grant the new key in')
  .option('--expires <date>', "the new key's expiry")
  .option('--scope <globs>', "the new key's scope (default: the old key's scope in the store)")
  .option('--label <word>', "the new key's label")
  .option('--retire-old <date>', "set the old key's expiry in the trust store")
  .option('--json', 'print the result as JSON')
  .action(async (oldKey: string, newKey: string, indexes: string[], o) => {
    const r = await runKeyRotate({
      oldKey,
      newKey,
      indexes,
      trustStore: o.trustStore,
      expires: o.expires,
      scope: o.scope?.split(','),
      label: o.label,
      retireOld: o.retireOld,
    });
    print(!!o.json, r, () =>
      [
        `rotated ${r.oldKeyId} -> ${r.newKeyId}${r.generated ? ` (new key written to ${newKey})` : ''}`,
        ...r.indexes.map((i) => `  ${i.index}: ${i.signatures} signatures`),
        ...(r.trustStore ? [`  granted ${r.newKeyId} in ${r.trustStore}`] : []),
        `new public key ${r.newPublicKey}`,
      ].join('\n'),
    );
  });

const catalog = program
  .command('catalog')
  .description('maintain STORE/catalog.json, the menu of images thfc-vm offers (thfc-vm list / menu)');

catalog
  .command('add')
  .description('add (or replace) an entry for INDEX; its URLs are relative to the catalog, so the store can move')
  .argument('<store>', 'store directory')
  .argument('<index>', 'STORE/NAME.idx or NAME.idx')
  .option('-n, --name <name>', "entry name (default: the index's image name)")
  .option('-d, --description <text>', 'one line shown in the menu')
  .option('--kernel <file|url>', 'boot default: kernel file inside STORE (e.g. boot/vmlinux) or an http(s) URL')
  .option('--initrd <file|url>', 'boot default: initrd inside STORE or an http(s) URL')
  .option('--append <cmdline>', 'boot default: kernel command line')
  .option('--mem <mib>', 'boot default: guest memory in MiB')
  .option('--cpus <n>', 'boot default: guest CPUs')
  .addOption(new Option('--disk-bus <bus>', 'boot default: disk bus').choices(['virtio', 'ide']))
  .addOption(new Option('--net <mode>', 'boot default: networking').choices(['user', 'none']))
  .option('--json', 'print the result as JSON')
  .action(async (store: string, index: string, o) => {
    const r = await runCatalogAdd({
      store,
      index,
      name: o.name,
      description: o.description,
      boot: {
        kernel: o.kernel,
        initrd: o.initrd,
        append: o.append,
        mem: o.mem === undefined ? undefined : count('--mem', 1)(o.mem),
        cpus: o.cpus === undefined ? undefined : count('--cpus', 1)(o.cpus),
        diskBus: o.diskBus,
        net: o.net,
      },
    });
    print(!!o.json, r, () => `${r.action} ${r.changed.join(', ')} in ${r.catalog} (${r.images} images)`);
  });

catalog
  .command('remove')
  .description('remove entries by name')
  .argument('<store>', 'store directory')
  .argument('<names...>', 'entry names')
  .option('--json', 'print the result as JSON')
  .action(async (store: string, names: string[], o) => {
    const r = await runCatalogRemove({ store, names });
    print(!!o.json, r, () => `removed ${r.changed.join(', ')} from ${r.catalog} (${r.images} images left)`);
  });

ignoreClosedOutput();
try {
  oneLineParseErrors(program);
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = report(e);
}

function report(e: unknown): number {
  if (e instanceof CheckFailedError && e.cause === 'reported') return EXIT.CHECK_FAILED;
  return reportError('thfc-pack', e);
}
