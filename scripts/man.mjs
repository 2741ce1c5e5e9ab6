#!/usr/bin/env node
// Writes packages/PKG/man/COMMAND.1 (roff) for every command, from each command's own --help (commander's,
// after `npm run build`): the options a man page lists are then the ones the program parses. The pages are
// committed (small text); test/man-pages.test.ts fails when one differs from what this script writes now.
//   node scripts/man.mjs [--out DIR]   (default: into each package's man/)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Each command: its package, its script, and (for httpstorged, whose subcommands are hidden from its help, which is
 * the mount's) the subcommands its help names only in its usage.
 */
export const PAGES = [
  { name: 'thfc-pack', pkg: 'packer', script: 'cli.js' },
  {
    name: 'httpstorged',
    pkg: 'blockfs',
    script: 'cli.js',
    subcommands: ['nbd', 'umount', 'stats', 'list', 'cache', 'cache prune', 'measurements', 'fsck', 'switch'],
  },
  { name: 'thfc-mirror', pkg: 'mirror', script: 'cli.js' },
  { name: 'thfc-vm', pkg: 'vm-launch', script: 'cli.js' },
  { name: 'thfc-attest', pkg: 'attest', script: 'cli.js' },
  { name: 'httpfuse-kvm', pkg: 'vm-launch', script: 'httpfuse-kvm.js' },
  { name: 'httpfuse-qemu', pkg: 'vm-launch', script: 'httpfuse-qemu.js' },
];

/** How deep subcommands are followed (thfc-pack profile record is two levels). */
const MAX_DEPTH = 2;

function help(page, args) {
  const script = join(ROOT, 'packages', page.pkg, 'dist', page.script);
  // A fixed width and no colour: the same page on every machine.
  return execFileSync(process.execPath, [script, ...args, '--help'], {
    encoding: 'utf8',
    env: { ...process.env, COLUMNS: '80', NO_COLOR: '1', FORCE_COLOR: '0' },
    timeout: 30_000,
  });
}

/** commander's help: usage lines, description, and its Arguments/Options/Commands sections as [term, text]. */
export function parseHelp(text) {
  const lines = text.replace(/\s+$/, '').split('\n');
  const usage = [];
  let i = 0;
  if (lines[0]?.startsWith('Usage: ')) {
    usage.push(lines[0].slice('Usage: '.length));
    for (i = 1; i < lines.length && /^ {7}\S/.test(lines[i]); i++) usage.push(lines[i].trim());
  }
  const description = [];
  const sections = {};
  let section;
  for (; i < lines.length; i++) {
    const l = lines[i];
    const heading = /^([A-Z][A-Za-z ]*):$/.exec(l);
    if (heading) {
      section = sections[heading[1]] = [];
      continue;
    }
    if (!section) {
      if (l.trim()) description.push(l.trim());
      else if (description.length && description.at(-1) !== '') description.push('');
      continue;
    }
    const entry = /^ {2}(\S.*?)(?: {2,}(\S.*))?$/.exec(l);
    if (entry) section.push([entry[1], entry[2] ?? '']);
    else if (l.trim() && section.length) section.at(-1)[1] += ` ${l.trim()}`;
  }
  return { usage, description: description.join(' ').replace(/ {2,}/g, ' ').trim(), sections };
}

/**
 * Text for roff: backslashes escaped, hyphens literal, no line starting with a control character, and
 * non-ASCII characters (…, →) as named Unicode escapes, which every groff renders without a preprocessor.
 */
function roff(s) {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1')
    .replace(/[\u0080-\u{10FFFF}]/gu, (c) => `\\[u${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
}

function entries(list) {
  return list.flatMap(([term, text]) => ['.TP', `.B ${roff(term)}`, roff(text || ' ')]);
}

function section(out, title, parsed) {
  for (const name of ['Arguments', 'Options']) {
    const list = parsed.sections[name]?.filter(([t]) => !/^-h, --help/.test(t));
    if (list?.length) out.push(title ? `.PP\n${name}:` : `.SH ${name.toUpperCase()}`, ...entries(list));
  }
}

function subcommandsOf(parsed) {
  return (parsed.sections.Commands ?? []).map(([term]) => term.split(' ')[0]).filter((c) => c !== 'help');
}

export function manPage(page, helpOf = (args) => help(page, args)) {
  const top = parseHelp(helpOf([]));
  const out = [
    `.TH ${page.name.toUpperCase()} 1 "" "thfc" "thfc manual"`,
    '.SH NAME',
    `${page.name} \\- ${roff(top.description.split('. ')[0].replace(/\.$/, ''))}`,
    '.SH SYNOPSIS',
    ...top.usage
      .flatMap((u, n) => [n ? '.br' : '', `.B ${page.name}`, roff(u.replace(new RegExp(`^${page.name} ?`), ''))])
      .filter(Boolean),
    '.SH DESCRIPTION',
    roff(top.description),
  ];
  section(out, '', top);
  const subs = [];
  const walk = (args, parsed, depth) => {
    for (const c of subcommandsOf(parsed)) {
      const sub = parseHelp(helpOf([...args, c]));
      subs.push([[...args, c], sub]);
      if (depth < MAX_DEPTH) walk([...args, c], sub, depth + 1);
    }
  };
  walk([], top, 1);
  for (const s of page.subcommands ?? []) subs.push([s.split(' '), parseHelp(helpOf(s.split(' ')))]);
  if (subs.length) {
    out.push('.SH COMMANDS');
    for (const [args, sub] of subs) {
      out.push(`.SS ${roff(`${page.name} ${args.join(' ')}`)}`);
      for (const u of sub.usage) out.push('.PP', `.B ${roff(u)}`);
      if (sub.description) out.push('.PP', roff(sub.description));
      section(out, args.join(' '), sub);
    }
  }
  out.push('.SH SEE ALSO', roff(`docs/${page.name}.md in the thfc sources, and docs/FORMAT.md, docs/TRUST.md.`));
  return `${out.join('\n')}\n`;
}

function main() {
  const o = process.argv.indexOf('--out');
  const outDir = o >= 0 ? process.argv[o + 1] : undefined;
  for (const page of PAGES) {
    const dir = outDir ?? join(ROOT, 'packages', page.pkg, 'man');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${page.name}.1`);
    const text = manPage(page);
    let old;
    try {
      old = readFileSync(path, 'utf8');
    } catch {}
    if (old === text) continue;
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
    process.stdout.write(`wrote ${path}\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
