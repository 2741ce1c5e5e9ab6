#!/usr/bin/env node
// `npm run long`: lists every function, method, accessor, constructor and arrow function in packages/*/src
// longer than 80 lines, or --max N (issue #14), longest first, as `LINES  file:line  name`. A report only: it exits 0
// unless given --check, then it exits 1 when any function is over the limit. `--allow NAME` (repeatable) lets
// the function of that name, and every function inside it, be over the limit without failing the check: it is
// still listed, marked "allowed"; an --allow that matches nothing listed is noted, not an error, so the name
// may be dropped whenever its function is split. A function whose leading comment (JSDoc or `//` lines directly
// above it, or above the variable, property or statement it is assigned to) has a line starting `Long:` is
// reasoned: it says why it reads best in one piece, so it, and every function inside it, passes the check too,
// listed and marked "reasoned".
//   node scripts/long-functions.mjs [--check] [--max N] [--allow NAME]… [ROOT]   (default: this repository, 80 lines)
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const args = process.argv.slice(2);
const check = args.includes('--check');
/** The values of every `--flag VALUE`, and the indexes of those values in args. */
const valuesOf = (flag) => args.flatMap((a, i) => (a === flag ? [i + 1] : []));
const valueAt = [...valuesOf('--max'), ...valuesOf('--allow')];
const maxAt = valuesOf('--max').at(-1);
const MAX = maxAt === undefined ? 80 : Number(args[maxAt]);
const ALLOW = new Set(valuesOf('--allow').map((i) => args[i]));
const positional = args.filter((a, i) => !a.startsWith('--') && !valueAt.includes(i));
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

/** A comment line that reasons a long function: `Long:` first, after the comment's own markers. */
const LONG_LINE = /^\s*(?:\/\/+|\/\*+|\*)?\s*Long:/m;

/** The node whose leading comment documents a function: the function, or what it is assigned to. */
function documented(node) {
  const p = node.parent;
  if (p && ts.isVariableDeclaration(p)) return ts.isVariableStatement(p.parent?.parent) ? p.parent.parent : p;
  if (p && (ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p))) return p;
  return node;
}

/** Whether the comments directly above `node` (or what it is assigned to) carry a `Long:` line. */
function reasoned(node, text) {
  const ranges = ts.getLeadingCommentRanges(text, documented(node).getFullStart()) ?? [];
  return ranges.some((r) => LONG_LINE.test(text.slice(r.pos, r.end)));
}

function longFunctions(file) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  // `allowedBy`: the --allow name of the function this node is inside, if any; `reasonedBy`: the name of the
  // function with a `Long:` comment this node is, or is inside, if any.
  const visit = (node, allowedBy, reasonedBy) => {
    let allowed = allowedBy;
    let why = reasonedBy;
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const name = nameOf(node);
      allowed ??= ALLOW.has(name) ? name : undefined;
      why ??= reasoned(node, text) ? name : undefined;
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX) {
        found.push({ file: relative(ROOT, file), line: start + 1, lines, name, allowedBy: allowed, reasonedBy: why });
      }
    }
    ts.forEachChild(node, (child) => visit(child, allowed, why));
  };
  visit(sf, undefined, undefined);
  return found;
}

const all = sourceFiles(ROOT)
  .flatMap(longFunctions)
  .sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line);
for (const f of all) {
  const notes = [];
  if (f.reasonedBy !== undefined) notes.push(`  (reasoned: ${f.reasonedBy})`);
  if (f.allowedBy !== undefined) notes.push(`  (allowed: ${f.allowedBy})`);
  console.log(`${String(f.lines).padStart(5)}  ${f.file}:${f.line}  ${f.name}${notes.join('')}`);
}
const reasonedCount = all.filter((f) => f.reasonedBy !== undefined).length;
const allowedCount = all.filter((f) => f.allowedBy !== undefined).length;
const refused = all.filter((f) => f.allowedBy === undefined && f.reasonedBy === undefined);
const counts = [
  ...(allowedCount ? [`${allowedCount} of them allowed by --allow`] : []),
  ...(reasonedCount ? [`${reasonedCount} reasoned by a Long: comment`] : []),
];
console.log(`${all.length} function(s) over ${MAX} lines${counts.map((c) => `, ${c}`).join('')}`);
for (const name of ALLOW) {
  if (!all.some((f) => f.allowedBy === name)) console.log(`--allow ${name}: nothing of that name is over ${MAX} lines`);
}
process.exitCode = check && refused.length > 0 ? 1 : 0;
