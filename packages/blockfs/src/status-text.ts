import { formatBytes } from '@thfc/cli';
import type { MountStatus } from './mount.js';
import type { NbdStatus } from './nbd-serve.js';
import type { PrefetchStatus } from './prefetcher.js';

/** `httpstorged stats` for people: one paragraph per image, one line per mirror. */
export function formatStatus(s: MountStatus | NbdStatus): string {
  const lines = [`${'mountpoint' in s ? s.mountpoint : s.address}: daemon pid ${s.pid} since ${s.started}`];
  if ('nbd' in s) {
    const n = s.nbd;
    lines.push(
      `nbd: ${n.connections} connections (${n.connectionsTotal} since start, ${n.dropped} dropped for breaking the protocol); ${n.requests} requests, ${formatBytes(n.bytesRead)} read, ${n.errors} errors`,
    );
  }
  lines.push(
    s.cache.dir
      ? `cache ${s.cache.dir}: ${s.cache.blocks} blocks, ${formatBytes(s.cache.bytes)}${s.cache.maxBytes ? ` of ${formatBytes(s.cache.maxBytes)}` : ''}; ${s.cache.sealed} trusted by the seal, ${s.cache.checked} hashed, ${s.cache.changed} found changed`
      : 'cache: none (RAM only)',
  );
  const sw = 'switch' in s ? s.switch : null;
  if (sw && sw.state !== 'idle') lines.push(`switch: ${sw.state} (${sw.at})${sw.message ? `: ${sw.message}` : ''}`);
  for (const i of s.images) {
    lines.push('');
    lines.push(`${i.name}  ${formatBytes(i.size)}  ${i.index} (index from ${i.indexFrom})`);
    lines.push(`  version  ${i.digest}${i.pinned ? ' (pinned)' : ''}`);
    const u = i.versionCheck?.update;
    if (u) lines.push(`  update   newer version available: ${u.digest}, published ${u.created} (remount to use it)`);
    lines.push(
      i.authenticated
        ? `  trust    authenticated: signed by ${i.signer}`
        : '  trust    not authenticated (no --trust or --trust-store): whoever can change the index chooses the bytes',
    );
    lines.push(
      `  blocks   ${i.blocks} (${i.zeroBlocks} zero, ${i.uniqueBlocks} unique); local ${i.localBlocks}/${i.uniqueBlocks} (${(i.localFraction * 100).toFixed(1)}%)`,
    );
    lines.push(
      `  fetched  ${i.blocksFetched} blocks, ${formatBytes(i.bytesDownloaded)}; cache hits ${i.cacheHits}; memory hits ${i.memoryHits}`,
    );
    lines.push(
      `  reads    ${i.reads} (${formatBytes(i.bytesRead)}), ${i.readErrors} errors, ${i.readaheadErrors ?? 0} readahead errors; read-ahead ${i.readaheadIssued} blocks`,
    );
    if (i.hedges) lines.push(`  hedges   ${i.hedges} sent, ${i.hedgesWon ?? 0} answered first`);
    if (i.prefetch) lines.push(`  prefetch ${backgroundText(i.prefetch)}; profile ${i.prefetch.source}`);
    if (i.fill) lines.push(`  fill     ${backgroundText(i.fill)}`);
    for (const m of i.mirrors) {
      lines.push(
        `  mirror   ${m.url} ${m.state}${m.latencyMs === null ? '' : ` ${m.latencyMs.toFixed(1)} ms`}, ${m.requests} requests, ${m.errors} errors, ${m.notFound} not found${m.lastError ? `; last error: ${m.lastError}` : ''}`,
      );
      const w = m.window;
      if (w) {
        const rtt = w.rttMs === null ? 'rtt -' : `rtt ${w.rttMs.toFixed(1)} ms`;
        const goodput = w.goodputBps === null ? 'goodput -' : `goodput ${formatBytes(w.goodputBps)}/s`;
        lines.push(
          `           window ${w.limit} (${w.mode}), ${w.inFlight} in flight, ${w.queued} queued; ${rtt}; ${goodput}`,
        );
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Profile replay or --fill: how far it got, and (for replay) whether readers used what it fetched. */
function backgroundText(p: PrefetchStatus): string {
  const state = p.done ? 'done' : 'running';
  const failed = p.failed ? `, ${p.failed} failed` : '';
  return `${state}: ${p.fetched}/${p.blocks} blocks fetched, ${p.pending} pending${failed}; ${p.hit} used by readers, ${p.wasted} not (yet)`;
}
