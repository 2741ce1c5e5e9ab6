import { describe, expect, it } from 'vitest';
import { initialMenu, type Key, menuStep, parseKeys, renderList, renderMenu } from '../src/menu.js';

const run = (count: number, input: string) => {
  let state = initialMenu(count);
  for (const key of parseKeys(input)) {
    const step = menuStep(state, key);
    state = step.state;
    if (step.quit) return { quit: true, state };
    if (step.choose !== undefined) return { choose: step.choose, state };
  }
  return { state };
};

describe('parseKeys', () => {
  it('reads arrows (both encodings), Enter, digits, q, Ctrl-C and a lone Esc', () => {
    expect(parseKeys('\x1b[A\x1bOB\r\n7q\x03\x1b').map((k: Key) => (k.kind === 'digit' ? k.digit : k.kind))).toEqual([
      'up',
      'down',
      'enter',
      'enter',
      '7',
      'quit',
      'quit',
      'quit',
    ]);
  });
  it('skips other escape sequences whole', () => {
    expect(parseKeys('\x1b[15~j').map((k) => k.kind)).toEqual(['other', 'down']);
  });
});

describe('menuStep', () => {
  it('arrows move and wrap; Enter boots the highlighted entry', () => {
    expect(run(3, '\x1b[B\x1b[B\r').choose).toBe(2);
    expect(run(3, '\x1b[A\r').choose).toBe(2);
    expect(run(3, '\x1b[B\x1b[B\x1b[B\r').choose).toBe(0);
    expect(run(3, '\r').choose).toBe(0);
  });
  it('a number picks that entry; two digits reach past 9', () => {
    expect(run(3, '2\r').choose).toBe(1);
    expect(run(12, '1').state.selected).toBe(0);
    expect(run(12, '12\r').choose).toBe(11);
    expect(run(12, '19').state.selected).toBe(8); // 19 is out of range: 9 starts again
    expect(run(3, '7').state.selected).toBe(0); // out of range: ignored
    expect(run(12, '12\x7f').state.selected).toBe(0);
  });
  it('q, Esc and Ctrl-C quit', () => {
    for (const k of ['q', '\x1b', '\x03']) expect(run(3, k).quit).toBe(true);
  });
  it('an empty catalog can only be left', () => {
    expect(run(0, '\x1b[B\r').quit).toBe(true);
  });
});

const ESC = '\x1b';

describe('rendering', () => {
  const items = [
    { name: 'debian', description: 'Debian 12' },
    { name: 'knoppix', description: 'KNOPPIX 5.3.1 '.repeat(10) },
  ];
  it('highlights the selection and fits the width', () => {
    const screen = renderMenu(
      items,
      { count: 2, selected: 1, typed: '2' },
      {
        title: 'T',
        source: 'http://m/catalog.json',
        footer: 'F',
        columns: 40,
      },
    );
    const lines = screen.split('\r\n');
    expect(lines).toContain('  1  debian   Debian 12');
    const chosen = lines.find((l) => l.includes('knoppix')) ?? '';
    expect(chosen.startsWith(`${ESC}[7m> 2  knoppix  KNOPPIX`)).toBe(true);
    expect(chosen.endsWith(`…${ESC}[0m`)).toBe(true);
    expect(screen).toContain('[2]');
    const visible = (l: string) =>
      l
        .split(ESC)
        .map((part, i) => (i === 0 ? part : part.replace(/^\[\d*[A-Za-z]/, '')))
        .join('');
    for (const l of lines) expect(visible(l).length).toBeLessThanOrEqual(40);
  });
  it('lists plainly for `list` and pipes', () => {
    expect(renderList([{ name: 'a', description: 'A', index: 'http://m/a.idx' }])).toBe(
      '1  a     A  (http://m/a.idx)\n',
    );
    expect(renderList([])).toMatch(/empty/);
  });
});
