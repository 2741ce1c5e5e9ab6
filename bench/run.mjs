#!/usr/bin/env node
// Benchmark dispatcher: `node bench/run.mjs [suite...]` (or `npm run bench -- suite...`).
//
// A suite is bench/<name>.mjs exporting `description` (one line) and
// `async function run(ctx)`. The suite fills ctx.table (rows with targets) and
// ctx.results (every number, for scripts); this file prints the table and one
// `BENCH-JSON {...}` line per suite, even when the suite fails part-way.
//
// Exit status: 0 every target met; 1 a target was missed; 2 a suite could not
// run (usage error, missing tool or build, crash); 130 interrupted.
//
// Environment: BENCH_DIR (work directory, default <repo>/.bench),
// BENCH_RUNS (repetitions per timed measurement, default 3); suites may read
// more (pack: BENCH_IMAGE_MIB, THFC_PACK_CLI).

import { rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BENCH_SRC_DIR,
  BenchError,
  benchRoot,
  ensureDir,
  envInt,
  killAllChildren,
  log,
  nowSeconds,
  printBenchJson,
  REPO_ROOT,
  ResultTable,
  removePath,
} from './lib.mjs';

/** Files in bench/ that are not suites. */
const NOT_SUITES = new Set(['run.mjs', 'lib.mjs']);
/** Three runs is the least that has a median; the machine is noisy (±30 %), so ratios within one run matter more. */
const DEFAULT_RUNS = 3;

async function availableSuites() {
  const files = await readdir(BENCH_SRC_DIR);
  return files
    .filter((f) => f.endsWith('.mjs') && !NOT_SUITES.has(f))
    .map((f) => f.slice(0, -'.mjs'.length))
    .sort();
}

async function loadSuite(name) {
  const mod = await import(pathToFileURL(join(BENCH_SRC_DIR, `${name}.mjs`)).href);
  if (typeof mod.run !== 'function') throw new BenchError('BAD_SUITE', `bench/${name}.mjs does not export run(ctx)`);
  return mod;
}

async function usage(write) {
  const names = await availableSuites();
  write('usage: npm run bench -- <suite> [suite...]    (or: node bench/run.mjs <suite>...)\n\nsuites:\n');
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const name of names) {
    let description = '';
    try {
      description = (await loadSuite(name)).description ?? '';
    } catch (e) {
      description = `(cannot load: ${e.message})`;
    }
    write(`  ${name.padEnd(width)}  ${description}\n`);
  }
  write('\nenv: BENCH_DIR (default <repo>/.bench), BENCH_RUNS (default 3)\n');
}

function hostInfo() {
  const cpus = os.cpus();
  return { node: process.version, cpus: cpus.length, cpuModel: cpus[0]?.model, kernel: os.release() };
}

const scratchDirs = new Set();

async function runSuite(name, signal) {
  const mod = await loadSuite(name);
  const dir = await ensureDir(join(benchRoot(), name));
  const scratch = join(dir, 'scratch');
  await removePath(scratch); // leftovers of an interrupted run
  await ensureDir(scratch);
  scratchDirs.add(scratch);
  const ctx = {
    name,
    repoRoot: REPO_ROOT,
    /** Kept between runs: caches (e.g. the test image) live here. */
    dir,
    /** Emptied before and after the suite: big temporary files go here. */
    scratch,
    runs: envInt('BENCH_RUNS', DEFAULT_RUNS),
    signal,
    table: new ResultTable(`bench ${name}`),
    results: {},
    log: (m) => log(`${name}: ${m}`),
  };
  const t0 = nowSeconds();
  let error;
  try {
    await mod.run(ctx);
  } catch (e) {
    error = e;
  } finally {
    await removePath(scratch).catch(() => {});
    scratchDirs.delete(scratch);
  }
  const seconds = nowSeconds() - t0;
  ctx.table.print();
  if (error) {
    const detail = error instanceof BenchError ? error.message : (error.stack ?? String(error));
    process.stdout.write(`bench ${name} FAILED TO COMPLETE:\n${detail}\n\n`);
  }
  const failed = ctx.table.failed.map((r) => r.key);
  printBenchJson({
    suite: name,
    ok: !error && failed.length === 0,
    error: error ? { code: error.code ?? 'CRASH', message: error.message } : null,
    failed,
    seconds: Number(seconds.toFixed(1)),
    runs: ctx.runs,
    host: hostInfo(),
    results: ctx.results,
    rows: ctx.table,
  });
  return error ? 2 : failed.length ? 1 : 0;
}

async function main() {
  const args = process.argv.slice(2);
  const write = (s) => process.stdout.write(s);
  if (args.length === 0 || args.includes('-h') || args.includes('--help')) {
    await usage(write);
    return 0;
  }
  const known = await availableSuites();
  const unknown = args.filter((a) => !known.includes(a));
  if (unknown.length) {
    process.stderr.write(`unknown suite(s): ${unknown.join(', ')}\n\n`);
    await usage((s) => process.stderr.write(s));
    return 2;
  }

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig) => {
    interrupts++;
    log(`${sig}: stopping (again to force)`);
    controller.abort();
    killAllChildren();
    if (interrupts > 1) {
      for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let status = 0;
  for (const name of args) {
    if (controller.signal.aborted) break;
    status = Math.max(status, await runSuite(name, controller.signal));
  }
  return controller.signal.aborted ? 130 : status;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`${e instanceof BenchError ? e.message : e.stack}\n`);
    process.exitCode = 2;
  },
);
