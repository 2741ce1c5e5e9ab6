#!/usr/bin/env node
// `npm run deps`: checks the package graph from each package's package.json and the imports of its src/,
// then prints the graph and its layers. Fails (exit 1, one line per finding on stderr) when a package
//   - imports a package that its package.json does not list in dependencies (peer or optional count too),
//   - imports a subpath of a workspace package that the package's "exports" does not offer,
//   - reaches into another package by path (`../../packer/src/x.js`, `@thfc/packer/dist/x.js`),
//   - depends on a private workspace package (@thfc/testkit) while it is published itself,
//   - or is part of a cycle (of declared or imported workspace dependencies).
// Node's builtins are allowed everywhere. Tests and benches are not checked: they may use devDependencies.
//   node scripts/deps.mjs [ROOT]   (default: this repository; a test runs it on a staged copy)
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const BUILTINS = new Set(builtinModules);

/** Every workspace package: its directory, manifest and declared dependencies. */
function readPackages(root) {
  const dir = join(root, 'packages');
  const out = new Map();
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (!ent.isDirectory()) continue;
    const pkgDir = join(dir, ent.name);
    let manifest;
    try {
      manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    } catch (e) {
      if (e.code === 'ENOENT') continue;
      throw e;
    }
    const declared = new Set(
      ['dependencies', 'peerDependencies', 'optionalDependencies'].flatMap((k) => Object.keys(manifest[k] ?? {})),
    );
    out.set(manifest.name, { name: manifest.name, dir: pkgDir, manifest, declared });
  }
  return out;
}

function sourceFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  return entries
    .filter((e) => e.isFile() && /\.(ts|mts|tsx|js|mjs)$/.test(e.name))
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .sort();
}

/** Every module specifier a file imports or re-exports, static or dynamic, with its 1-based line. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((f) => ({
    specifier: f.fileName,
    line: text.slice(0, f.pos).split('\n').length,
  }));
}

/** `@scope/name/sub/path` → [`@scope/name`, `./sub/path`]; `name/sub` → [`name`, `./sub`]. */
function splitSpecifier(specifier) {
  const parts = specifier.split('/');
  const n = specifier.startsWith('@') ? 2 : 1;
  const rest = parts.slice(n).join('/');
  return [parts.slice(0, n).join('/'), rest ? `./${rest}` : '.'];
}

function exportedSubpaths(manifest) {
  const { exports } = manifest;
  if (exports === undefined) return undefined;
  if (typeof exports === 'string' || !Object.keys(exports).some((k) => k.startsWith('.'))) return new Set(['.']);
  return new Set(Object.keys(exports));
}

export function checkDeps(root) {
  const packages = readPackages(root);
  const findings = [];
  /** name → workspace packages it depends on (declared or imported). */
  const edges = new Map([...packages.keys()].map((n) => [n, new Set()]));
  for (const pkg of packages.values()) {
    for (const d of pkg.declared) {
      if (!packages.has(d)) continue;
      edges.get(pkg.name).add(d);
      if (packages.get(d).manifest.private && !pkg.manifest.private) {
        const where = relative(root, join(pkg.dir, 'package.json')).split(sep).join('/');
        findings.push(`${where}: ${pkg.name} depends on ${d}, a private (test-only) package`);
      }
    }
    for (const file of sourceFiles(join(pkg.dir, 'src'))) {
      const where = relative(root, file).split(sep).join('/');
      for (const { specifier, line } of importsOf(file)) {
        const at = `${where}:${line}`;
        if (specifier.startsWith('.') || specifier.startsWith('/')) {
          const target = resolve(dirname(file), specifier);
          if (target !== pkg.dir && !target.startsWith(pkg.dir + sep)) {
            const rel = relative(root, target).split(sep).join('/');
            findings.push(`${at}: ${pkg.name} reaches outside its package by path ("${specifier}" is ${rel})`);
          }
          continue;
        }
        if (specifier.startsWith('node:') || BUILTINS.has(specifier)) continue;
        const [name, subpath] = splitSpecifier(specifier);
        if (name === pkg.name) {
          findings.push(`${at}: ${pkg.name} imports itself by name ("${specifier}"); use a relative path`);
          continue;
        }
        if (!pkg.declared.has(name)) {
          findings.push(`${at}: ${pkg.name} imports ${name}, which its package.json does not list in dependencies`);
        }
        const other = packages.get(name);
        if (!other) continue;
        edges.get(pkg.name).add(name);
        if (/^\.\/(src|dist)(\/|$)/.test(subpath)) {
          findings.push(`${at}: ${pkg.name} reaches into ${name}'s ${subpath.split('/')[1]}/ ("${specifier}")`);
          continue;
        }
        const offered = exportedSubpaths(other.manifest);
        if (offered && !offered.has(subpath)) {
          findings.push(`${at}: ${pkg.name} imports "${specifier}", which ${name}'s "exports" does not offer`);
        }
      }
    }
  }
  for (const pkg of packages.values()) findings.push(...wholesaleExports(root, pkg));
  for (const cycle of cyclesOf(edges)) findings.push(`cycle: ${cycle.join(' → ')}`);
  return { packages, edges, findings };
}

/**
 * A package's entry (src/index.ts) names its public API: `export * from` would publish every export of a
 * module, helpers included, and any later one too (issue 14 §7).
 */
function wholesaleExports(root, pkg) {
  const index = join(pkg.dir, 'src', 'index.ts');
  let text;
  try {
    text = readFileSync(index, 'utf8');
  } catch {
    return [];
  }
  const where = relative(root, index).split(sep).join('/');
  return text
    .split('\n')
    .flatMap((line, i) =>
      /^\s*export\s+(type\s+)?\*(\s+as\s+\w+)?\s+from\b/.test(line)
        ? [`${where}:${i + 1}: ${pkg.name} re-exports a whole module (${line.trim()}); name what it offers`]
        : [],
    );
}

/** Each elementary cycle found by depth-first search, once, as `a → b → a` starting at its smallest name. */
function cyclesOf(edges) {
  const found = new Map();
  const walk = (start, node, path, onPath) => {
    for (const next of [...(edges.get(node) ?? [])].sort()) {
      if (next === start) {
        const cycle = [...path];
        const k = cycle.indexOf([...cycle].sort()[0]);
        const rotated = [...cycle.slice(k), ...cycle.slice(0, k)];
        found.set(rotated.join(' '), [...rotated, rotated[0]]);
      } else if (!onPath.has(next) && next > start) {
        onPath.add(next);
        walk(start, next, [...path, next], onPath);
        onPath.delete(next);
      }
    }
  };
  for (const start of [...edges.keys()].sort()) walk(start, start, [start], new Set([start]));
  return [...found.values()];
}

/** Layer 0 depends on no workspace package; layer n on nothing above n - 1. Undefined on a cycle. */
function layersOf(edges) {
  const layer = new Map();
  const visit = (name, seen) => {
    if (layer.has(name)) return layer.get(name);
    if (seen.has(name)) return undefined;
    seen.add(name);
    let l = 0;
    for (const d of edges.get(name) ?? []) {
      const dl = visit(d, seen);
      if (dl === undefined) return undefined;
      l = Math.max(l, dl + 1);
    }
    seen.delete(name);
    layer.set(name, l);
    return l;
  };
  for (const name of edges.keys()) if (visit(name, new Set()) === undefined) return undefined;
  const out = Array.from({ length: Math.max(...layer.values()) + 1 }, () => []);
  for (const [name, l] of layer) out[l].push(name);
  return out.map((names) => names.sort());
}

function main() {
  const { edges, findings } = checkDeps(ROOT);
  const short = (n) => n.replace(/^@thfc\//, '');
  console.log('package graph (→ the workspace packages each depends on):');
  for (const name of [...edges.keys()].sort()) {
    const deps = [...edges.get(name)].sort().map(short);
    console.log(`  ${short(name).padEnd(10)} → ${deps.length ? deps.join(', ') : '(none)'}`);
  }
  const layers = layersOf(edges);
  if (layers) {
    console.log('layers (each depends only on layers below it):');
    layers.forEach((names, i) => {
      console.log(`  ${i}: ${names.map(short).join(', ')}`);
    });
  }
  for (const f of findings) console.error(f);
  if (findings.length) {
    console.error(`${findings.length} finding${findings.length === 1 ? '' : 's'}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
