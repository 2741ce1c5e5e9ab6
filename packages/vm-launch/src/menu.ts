/**
 * The OS selection menu as a pure state machine: keys in, selection out, and
 * the screen as a string. menu-terminal.ts feeds it from a raw terminal.
 */

type PlainKey = 'up' | 'down' | 'home' | 'end' | 'enter' | 'quit' | 'backspace' | 'other';
export type Key = { readonly kind: PlainKey } | { readonly kind: 'digit'; readonly digit: string };

export interface MenuState {
  readonly count: number;
  readonly selected: number;
  /** Digits typed so far ("1", "12"): a number picks that entry. */
  readonly typed: string;
}

export interface MenuStep {
  readonly state: MenuState;
  /** Enter: boot this entry (0-based). */
  readonly choose?: number;
  readonly quit?: boolean;
}

const SEQUENCES: readonly [string, PlainKey][] = [
  ['\x1b[A', 'up'],
  ['\x1bOA', 'up'],
  ['\x1b[B', 'down'],
  ['\x1bOB', 'down'],
  ['\x1b[H', 'home'],
  ['\x1bOH', 'home'],
  ['\x1b[1~', 'home'],
  ['\x1b[F', 'end'],
  ['\x1bOF', 'end'],
  ['\x1b[4~', 'end'],
  ['\x1b[5~', 'home'], // Page Up
  ['\x1b[6~', 'end'], // Page Down
];

/** Splits terminal input into keys (a chunk may hold several, or an escape sequence). */
export function parseKeys(input: string): Key[] {
  const keys: Key[] = [];
  let i = 0;
  while (i < input.length) {
    const seq = SEQUENCES.find(([s]) => input.startsWith(s, i));
    if (seq) {
      keys.push({ kind: seq[1] });
      i += seq[0].length;
      continue;
    }
    const c = input[i] as string;
    i++;
    if (c === '\x1b') {
      // Another escape sequence (function keys…) is skipped whole; a lone Esc quits.
      const m = /^(\[[0-9;]*[A-Za-z~]|O[A-Za-z])/.exec(input.slice(i));
      if (m) {
        i += m[0].length;
        keys.push({ kind: 'other' });
      } else keys.push({ kind: 'quit' });
    } else if (c === '\r' || c === '\n') keys.push({ kind: 'enter' });
    else if (c >= '0' && c <= '9') keys.push({ kind: 'digit', digit: c });
    else if (c === 'k') keys.push({ kind: 'up' });
    else if (c === 'j') keys.push({ kind: 'down' });
    else if (c === 'q' || c === 'Q' || c === '\x03' || c === '\x04') keys.push({ kind: 'quit' });
    else if (c === '\x7f' || c === '\b') keys.push({ kind: 'backspace' });
    else keys.push({ kind: 'other' });
  }
  return keys;
}

export function initialMenu(count: number, selected = 0): MenuState {
  return { count, selected: Math.min(Math.max(0, selected), Math.max(0, count - 1)), typed: '' };
}

export function menuStep(s: MenuState, key: Key): MenuStep {
  if (s.count === 0) return key.kind === 'quit' || key.kind === 'enter' ? { state: s, quit: true } : { state: s };
  const valid = (t: string) => t !== '' && Number(t) >= 1 && Number(t) <= s.count;
  switch (key.kind) {
    case 'up':
      return { state: { ...s, selected: (s.selected - 1 + s.count) % s.count, typed: '' } };
    case 'down':
      return { state: { ...s, selected: (s.selected + 1) % s.count, typed: '' } };
    case 'home':
      return { state: { ...s, selected: 0, typed: '' } };
    case 'end':
      return { state: { ...s, selected: s.count - 1, typed: '' } };
    case 'enter':
      return { state: { ...s, typed: '' }, choose: s.selected };
    case 'quit':
      return { state: s, quit: true };
    case 'backspace': {
      const typed = s.typed.slice(0, -1);
      return { state: { ...s, typed, selected: valid(typed) ? Number(typed) - 1 : s.selected } };
    }
    case 'digit': {
      const longer = s.typed + key.digit;
      if (valid(longer)) return { state: { ...s, typed: longer, selected: Number(longer) - 1 } };
      if (valid(key.digit)) return { state: { ...s, typed: key.digit, selected: Number(key.digit) - 1 } };
      return { state: { ...s, typed: '' } };
    }
    default:
      return { state: s };
  }
}

export interface MenuItem {
  readonly name: string;
  readonly description: string;
}

const CLEAR = '\x1b[H\x1b[2J';
const INVERSE = '\x1b[7m';
const NORMAL = '\x1b[0m';

/**
 * The whole screen. Lines end in CRLF: a raw-mode terminal does not turn \n
 * into a carriage return.
 */
export function renderMenu(
  items: readonly MenuItem[],
  s: MenuState,
  o: { title: string; source: string; footer: string; columns: number },
): string {
  const width = Math.max(20, o.columns);
  const nameWidth = Math.min(24, Math.max(4, ...items.map((i) => i.name.length)));
  const numWidth = String(items.length).length;
  const lines = [`  ${o.title}`, `  ${o.source}`, ''];
  if (items.length === 0) lines.push('  (the catalog is empty)');
  items.forEach((item, i) => {
    const text = `${String(i + 1).padStart(numWidth)}  ${item.name.padEnd(nameWidth)}  ${item.description}`;
    const clipped = text.length > width - 4 ? `${text.slice(0, width - 5)}…` : text;
    lines.push(i === s.selected ? `${INVERSE}> ${clipped}${NORMAL}` : `  ${clipped}`);
  });
  lines.push('', `  ${o.footer}${s.typed ? `   [${s.typed}]` : ''}`);
  return `${CLEAR}${lines.join('\r\n')}\r\n`;
}

/** The catalog as plain lines: `thfc-vm list`, and the menu when stdin is not a terminal. */
export function renderList(items: readonly (MenuItem & { index: string })[]): string {
  if (items.length === 0) return '(the catalog is empty)\n';
  const numWidth = String(items.length).length;
  const nameWidth = Math.max(4, ...items.map((i) => i.name.length));
  return items
    .map(
      (it, i) =>
        `${String(i + 1).padStart(numWidth)}  ${it.name.padEnd(nameWidth)}  ${it.description}${it.description ? '  ' : ''}(${it.index})`,
    )
    .join('\n')
    .concat('\n');
}
