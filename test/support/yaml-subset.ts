/**
 * A parser for the small YAML subset docker/compose.yaml is written in (no
 * YAML library is installed): block mappings, block lists (of scalars or of
 * mappings), JSON lists `["a", "b"]` on one line or one item per line (as
 * biome formats long ones), double-quoted and plain
 * scalars, `#` comments. Anything else is an error naming the line, so the
 * file cannot drift into YAML this reader would misread.
 */
export type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  readonly text: string;
  readonly indent: number;
  readonly no: number;
}

export function parseYamlSubset(source: string): YamlValue {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    const text = stripComment(raw).trimEnd();
    if (!text.trim()) return;
    if (text.includes('\t')) throw new Error(`line ${i + 1}: tabs are not allowed`);
    lines.push({ text: text.trim(), indent: text.length - text.trimStart().length, no: i + 1 });
  });
  let pos = 0;
  const at = () => lines[pos];

  const block = (indent: number): YamlValue => {
    const first = at();
    if (first?.text === '[') return flowList(first);
    return first?.text.startsWith('- ') ? list(indent) : map(indent);
  };

  /** A JSON-style list spread over lines, as biome formats a long one: `[`, one item per line, `]`. */
  const flowList = (open: Line): YamlValue => {
    const parts: string[] = [];
    for (let line = at(); line; line = at()) {
      pos++;
      parts.push(line.text);
      if (line.text === ']') return scalar(parts.join(' ').replace(/,\s*\]$/, ']'), open.no);
    }
    throw new Error(`line ${open.no}: the list is never closed`);
  };

  const map = (indent: number): { [key: string]: YamlValue } => {
    const out: { [key: string]: YamlValue } = {};
    for (let line = at(); line && line.indent === indent && !line.text.startsWith('- '); line = at()) {
      const m = /^([A-Za-z0-9_.-]+):(?: (.*))?$/.exec(line.text);
      if (!m) throw new Error(`line ${line.no}: expected "key:" or "key: value"`);
      const key = m[1] as string;
      if (Object.hasOwn(out, key)) throw new Error(`line ${line.no}: duplicate key ${key}`);
      pos++;
      const next = at();
      if (m[2] === undefined) out[key] = next && next.indent > indent ? block(next.indent) : null;
      else out[key] = scalar(m[2], line.no);
    }
    const stray = at();
    if (stray && stray.indent > indent) throw new Error(`line ${stray.no}: unexpected indentation`);
    return out;
  };

  const list = (indent: number): YamlValue[] => {
    const out: YamlValue[] = [];
    for (let line = at(); line && line.indent === indent && line.text.startsWith('- '); line = at()) {
      const item = line.text.slice(2);
      if (/^[A-Za-z0-9_.-]+:( |$)/.test(item)) {
        // `- key: value` opens a mapping whose keys sit two columns right of the dash.
        lines[pos] = { text: item, indent: indent + 2, no: line.no };
        out.push(map(indent + 2));
      } else {
        pos++;
        out.push(scalar(item, line.no));
      }
    }
    return out;
  };

  const root = block(0);
  const rest = at();
  if (rest) throw new Error(`line ${rest.no}: unexpected indentation`);
  return root;
}

function scalar(text: string, no: number): YamlValue {
  if (text.startsWith('[') || text.startsWith('"')) {
    try {
      return JSON.parse(text) as YamlValue;
    } catch {
      throw new Error(`line ${no}: a list or quoted string must be valid JSON: ${text}`);
    }
  }
  if (/^[{&*!|>'%@`]/.test(text) || / #|: /.test(text)) throw new Error(`line ${no}: outside the YAML subset: ${text}`);
  return text;
}

/** Drops a `#` comment that starts a line or follows a blank, outside double quotes. */
function stripComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"' && line[i - 1] !== '\\') quoted = !quoted;
    if (c === '#' && !quoted && (i === 0 || line[i - 1] === ' ')) return line.slice(0, i);
  }
  return line;
}
