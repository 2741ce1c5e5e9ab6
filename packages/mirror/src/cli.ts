#!/usr/bin/env node
import {
  count,
  formatBytes,
  formatRate,
  ignoreClosedOutput,
  notifySystemdReady,
  oneLineParseErrors,
  processShell,
  reportError,
  seconds,
  size,
} from '@thfc/cli';
import { EXIT } from '@thfc/format';
import { LineLogger } from '@thfc/store';
import { Command } from 'commander';
import { DEFAULT_DNS_LISTEN, runDns } from './dns/run-dns.js';
import { DEFAULT_SERVE_LISTEN } from './listen-address.js';
import { DEFAULT_PROXY_LISTEN, type ProxySummary, runProxy } from './proxy.js';
import { runServe } from './serve.js';
import { DEFAULT_MAX_INFLIGHT } from './server.js';
import { DEFAULT_SYNC_CONNECTIONS, runSync, type SyncReport } from './sync.js';

/**
 * thfc-mirror: the mirror operator's daemon. A table of commands over typed
 * run*() functions; this file is the only one that touches `process`, and
 * the one place errors become exit codes and one-line messages.
 */

// First signal: stop cleanly (temp files removed, whole blocks only, registry record dropped). Second: leave now.
const shell = processShell();

/** Under systemd as a `Type=notify` service (contrib/systemd/): ready now. A failure is logged, not fatal. */
async function tellSystemdReady(): Promise<void> {
  const problem = await notifySystemdReady(process.env, process.pid, shell.signal);
  if (problem) process.stderr.write(`thfc-mirror: ${problem}\n`);
}
const io = shell.io;

const collect = (v: string, prev: string[] = []) => [...prev, v];

const program = new Command('thfc-mirror')
  .description('Serve, replicate and balance thfc block stores.')
  .version('0.1.0')
  .exitOverride();

program
  .command('serve')
  .description('serve STORE over HTTP: indexes, blocks, /index.json, /healthz, /metrics (until Ctrl-C)')
  .argument('<store>', 'store directory (NAME.idx and blocks/)')
  .option('-l, --listen <host:port>', 'address to listen on', DEFAULT_SERVE_LISTEN)
  .option('-u, --upstream <url>', 'pull missing blocks and indexes from this mirror (repeatable, in order)', collect)
  .option('--region <name>', 'region this mirror reports to the registry (default: default)')
  .option('--advertise <url>', 'URL clients should use (default: http://LISTEN/)')
  .option(
    '--redis <url>',
    'register in this Redis registry (redis://HOST[:PORT][/DB], redis+cluster://HOST:PORT,…, redis+sentinel://HOST:PORT,…/MASTER) with a heartbeat',
  )
  .option('--redis-cluster', 'the --redis URL names seed nodes of a Redis Cluster')
  .option('--mirrors-file <file>', 'register in this static mirrors file instead of Redis')
  .option('--mirrors <file>', 'same as --mirrors-file')
  .option(
    '--max-inflight <n>',
    'requests answered at once; past it, 503 with Retry-After',
    String(DEFAULT_MAX_INFLIGHT),
  )
  .option('--memory-cache <size>', 'RAM for hot blocks (K, M, G suffixes; 0 turns it off)', '256M')
  .option('--no-access-log', 'do not write one line per request to stdout')
  .option('-v, --verbose', 'log every upstream fetch')
  .action(async (store: string, o) => {
    const s = await runServe(
      {
        store,
        listen: o.listen,
        upstreams: o.upstream,
        region: o.region,
        advertise: o.advertise,
        redis: o.redis,
        redisCluster: !!o.redisCluster,
        mirrorsFile: o.mirrorsFile ?? o.mirrors,
        maxInflight: count('--max-inflight', 1)(o.maxInflight),
        memoryCacheBytes: size('--memory-cache')(o.memoryCache),
        accessLog: o.accessLog,
        verbose: !!o.verbose,
      },
      io(true),
      { ready: () => void tellSystemdReady() },
    );
    process.stderr.write(`thfc-mirror: stopped serving ${s.url} after ${s.requests} requests\n`);
  });

program
  .command('sync')
  .description(
    'replicate indexes (default: all the upstream lists), the blocks they need and their boot profiles; each index after its blocks, each profile after its index',
  )
  .argument('<upstream-url>', "the upstream mirror's base URL, e.g. http://mirror.example:8080/")
  .argument('[indexes...]', 'NAME or NAME.idx to sync (default: every index in the upstream /index.json)')
  .requiredOption('-s, --store <dir>', 'local store directory (created if missing)')
  .option('-w, --watch <seconds>', 'sync again every SECONDS until Ctrl-C')
  .option('-c, --connections <n>', 'blocks fetched in parallel', String(DEFAULT_SYNC_CONNECTIONS))
  .option('--json', 'print the summary as JSON (one line per pass with --watch)')
  .option('-v, --verbose', 'log every block fetch')
  .action(async (upstream: string, names: string[], o) => {
    const json = !!o.json;
    const print = (r: SyncReport) => process.stdout.write(json ? `${JSON.stringify(r)}\n` : `${describeSync(r)}\n`);
    const r = await runSync(
      {
        upstream,
        names: names.length ? names : undefined,
        store: o.store,
        watchSeconds: o.watch === undefined ? undefined : seconds('--watch')(o.watch),
        connections: count('--connections', 1)(o.connections),
        verbose: !!o.verbose,
      },
      {
        ...io(json),
        onPass: ({ report }) => {
          if (report) print(report);
        },
      },
    );
    if (o.watch === undefined) print(r);
  });

program
  .command('dns')
  .description('DNS-Balance: answer SRV/A/AAAA/TXT for the pool with live mirrors, nearest and least loaded first')
  .requiredOption('-z, --zone <zone>', 'the pool name, e.g. mirrors.example.org')
  .option('-l, --listen <host:port>', 'address for UDP and TCP', DEFAULT_DNS_LISTEN)
  .option('--redis <url>', 'read mirrors from this Redis registry (as for serve)')
  .option('--redis-cluster', 'the --redis URL names seed nodes of a Redis Cluster')
  .option('--mirrors <file>', 'read mirrors from this static mirrors file')
  .option('--mirrors-file <file>', 'same as --mirrors')
  .option('--networks <file>', 'CIDR → preferred regions, for ordering by client network')
  .option('--ttl <seconds>', 'TTL of the answers')
  .action(async (o) => {
    const logger = new LineLogger((l) => process.stderr.write(l));
    const dns = await runDns(
      {
        zone: o.zone,
        listen: o.listen,
        redis: o.redis,
        redisCluster: !!o.redisCluster,
        mirrorsFile: o.mirrors ?? o.mirrorsFile,
        networksFile: o.networks,
        ttlSeconds: o.ttl === undefined ? undefined : count('--ttl', 0)(o.ttl),
      },
      { signal: shell.signal, logger },
    );
    void tellSystemdReady();
    if (!shell.signal.aborted) {
      await new Promise<void>((r) => shell.signal.addEventListener('abort', () => r(), { once: true }));
    }
    await dns.close();
  });

program
  .command('proxy')
  .description('simulate a WAN link in front of a mirror: latency, bandwidth, 503s and resets (until Ctrl-C)')
  .argument('<upstream-url>', 'the mirror (or any HTTP server) to proxy, e.g. http://127.0.0.1:8080/')
  .option('-l, --listen <host:port>', 'address to listen on', DEFAULT_PROXY_LISTEN)
  .option(
    '--inject <spec>',
    'faults per request: latency=50ms,jitter=10ms,bandwidth=2MB/s,error-rate=0.01,reset-rate=0.01,drip-rate=0.03,drip=1B/100ms (any subset)',
  )
  .option('--json', 'at exit, print what went through as JSON on stdout')
  .action(async (upstream: string, o) => {
    const s = await runProxy({ upstream, listen: o.listen, inject: o.inject }, io(!!o.json));
    if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`);
    process.stderr.write(`thfc-mirror: ${describeProxy(s)}\n`);
  });

function describeProxy(s: ProxySummary): string {
  return `stopped proxy ${s.url} after ${s.requests} requests in ${s.seconds.toFixed(1)} s: ${s.errors} answered 503, ${s.resets} cut mid-body, ${s.drips} dripped, ${formatBytes(s.bytes)} relayed`;
}

function describeSync(r: SyncReport): string {
  const lines = r.indexes.map(
    (i) =>
      `  ${i.name}: ${i.status}, ${i.blocks} blocks (${i.present} present, ${i.fetched} fetched, ${formatBytes(i.fetchedBytes)}), profile ${i.profile}`,
  );
  lines.unshift(
    `synced ${r.indexes.length} index(es) from ${r.upstream} into ${r.store}: ${r.fetchedBlocks} blocks, ${formatBytes(r.fetchedBytes)} fetched in ${r.seconds.toFixed(2)} s (${formatRate(r.fetchedBytes, r.seconds)})`,
  );
  return lines.join('\n');
}

ignoreClosedOutput();
try {
  oneLineParseErrors(program);
  await program.parseAsync(process.argv);
  // A daemon (serve, dns, proxy, sync --watch) stopped by its signal exits as every interrupted command does.
  if (shell.signal.aborted) process.exitCode = EXIT.INTERRUPTED;
} catch (e) {
  process.exitCode = reportError('thfc-mirror', e);
}
