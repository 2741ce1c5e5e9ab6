import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every command a workspace package declares, from its package.json. */
function declaredCommands(): string[] {
  const names: string[] = [];
  const { workspaces } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { workspaces: string[] };
  for (const dir of workspaces) {
    const json = JSON.parse(readFileSync(`${ROOT}${dir}/package.json`, 'utf8')) as {
      bin?: Record<string, string>;
    };
    names.push(...Object.keys(json.bin ?? {}));
  }
  return names;
}

// The README promises the commands on `npx` after setup, and scripts/demo.sh runs them from node_modules/.bin.
// A fresh clone's `npm ci` cannot link them (dist/ does not exist yet): scripts/setup.sh links them after the build.
describe('the commands after setup', () => {
  it('each declared command runs from node_modules/.bin and answers --help', () => {
    const names = declaredCommands();
    expect(names.length).toBeGreaterThanOrEqual(7);
    for (const name of names) {
      const r = spawnSync(`${ROOT}node_modules/.bin/${name}`, ['--help'], { encoding: 'utf8', timeout: 30_000 });
      expect({ name, error: r.error?.message, status: r.status }).toEqual({ name, error: undefined, status: 0 });
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  });
});

// `thfc-pack inspect x.idx | head -1`: a reader that goes away must not make a command crash with a stack trace
// (Node's default for an EPIPE on stdout). Stdout's reading end is closed before the command writes anything.
describe('the commands when the reader of their output goes away', () => {
  it('each declared command answers --help into a closed pipe with its usual status and nothing on stderr', async () => {
    for (const name of declaredCommands()) {
      const child = spawn(`${ROOT}node_modules/.bin/${name}`, ['--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      expect({ name, status, stderr }).toEqual({ name, status: 0, stderr: '' });
    }
  }, 60_000);
});

// Issue 15 §2: commander's parse errors were 2-3 lines without the command's name. Every command now gives one
// line, `NAME: message (see NAME --help)`, and exit 2; and --version works on each (-V too).
describe('the commands on a usage error', () => {
  it('each declared command reports an unknown option in one line with its name, exit 2', () => {
    for (const name of declaredCommands()) {
      const r = spawnSync(`${ROOT}node_modules/.bin/${name}`, ['--no-such-option'], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      const lines = r.stderr.trim().split('\n');
      expect({ name, status: r.status, lines: lines.length }).toEqual({ name, status: 2, lines: 1 });
      expect(lines[0]).toMatch(new RegExp(`^${name}: .*--no-such-option.* \\(see ${name}( \\S+)? --help\\)$`));
    }
  });

  it('each declared command prints its version with --version and -V', () => {
    for (const name of declaredCommands()) {
      for (const flag of ['--version', '-V']) {
        const r = spawnSync(`${ROOT}node_modules/.bin/${name}`, [flag], { encoding: 'utf8', timeout: 30_000 });
        expect({ name, flag, status: r.status, out: r.stdout.trim() }).toEqual({ name, flag, status: 0, out: '0.1.0' });
      }
    }
  });

  it('a typo of a required option names the typo, not the option it left out', () => {
    const r = spawnSync(`${ROOT}node_modules/.bin/thfc-pack`, ['pack', 'x.img', '--stroe', 's'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("thfc-pack: unknown option '--stroe' (Did you mean --store?) (see thfc-pack pack --help)\n");
  });
});
