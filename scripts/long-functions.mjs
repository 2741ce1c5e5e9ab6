#!/usr/bin/env node
// `npm run long`: lists every function, method, accessor, constructor and arrow function in packages/*/src
// longer than 80 lines (issue #14), longest first, as `LINES  file:line  name`. A report only: it exits 0
// unless given --check, then it exits 1 when any function is over the limit.
//   node scripts/long-functions.mjs [--check] [--max N] [ROOT]   (default: this repository, 80 lines)
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const args = process.argv.slice(2);
const check = args.includes('--check');
const maxAt = args.indexOf('--max');
const MAX = maxAt >= 0 ? Number(args[maxAt + 1]) : 80;
const positional = args.filter((a, i) => !a.startsWith('--') && (maxAt < 0 || i !== maxAt + 1));
const ROOT = resolve(positional[0] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));

function sourceFiles(root) {
  const pkgs = join(root, 'packages');
  const out = [];
  for (const pkg of readdirSync(pkgs, { withFileTypes: true })) {
    if (!pkg.isDirectory()) continue;
    let entries;
    try {
      entries = readdirSync(join(pkgs, pkg.name, 'src'), { withFileTypes: true, recursive: true });
    } catch (e) {
      if (e.code === 'ENOENT') continue;
      throw e;
    }
    for (const e of entries) {
      if (e.isFile() && /\.(ts|mts|tsx)$/.test(e.name) && !e.name.endsWith('.d.ts')) {
        out.push(join(e.parentPath ?? e.path, e.name));
      }
    }
  }
  return out.sort();
}

/** A readable name for a function node: its own name, or the variable/property it is assigned to. */
function nameOf(node) {
  if (ts.isConstructorDeclaration(node)) return `${nameOf(node.parent)}.constructor`;
  if (node.name) {
    const own = node.name.getText();
    const cls = node.parent && (ts.isClassDeclaration(node.parent) || ts.isClassExpression(node.parent));
    return cls ? `${nameOf(node.parent)}.${own}` : own;
  }
  const p = node.parent;
  if (p && (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) {
    return p.name.getText();
  }
  if (p && (ts.isCallExpression(p) || ts.isNewExpression(p))) {
    return `(callback of ${p.expression.getText().slice(0, 40)})`;
  }
  return '(anonymous)';
}

function longFunctions(file) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX) found.push({ file: relative(ROOT, file), line: start + 1, lines, name: nameOf(node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

const all = sourceFiles(ROOT)
  .flatMap(longFunctions)
  .sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
for (const f of all) console.log(`${String(f.lines).padStart(5)}  ${f.file}:${f.line}  ${f.name}`);
console.log(`${all.length} function(s) over ${MAX} lines`);
process.exitCode = check && all.length > 0 ? 1 : 0;
