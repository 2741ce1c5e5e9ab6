import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type LaunchPlan, renderPlan } from '../src/launch-plan.js';

const plan: LaunchPlan = {
  engine: 'xen',
  notes: ['image: http://m/x.idx'],
  prepare: [{ program: 'mkdir', args: ['-p', '/r/mnt'], comment: 'run dir' }],
  files: [{ path: '/r/x.cfg', content: 'name = "x"\nmemory = 512\n' }],
  setup: [],
  run: { program: 'xl', args: ['create', '-c', '/r/x.cfg'] },
  teardown: [{ program: 'xl', args: ['destroy', 'x'] }],
  cleanup: [{ program: 'rm', args: ['-rf', '/r dir'] }],
};

describe('renderPlan', () => {
  it('prints a shell script: notes, steps in order, config files as here-documents', () => {
    expect(renderPlan(plan)).toBe(
      [
        '#!/bin/sh',
        '# thfc-vm --dry-run (engine xen): the commands a boot runs, in order.',
        '# image: http://m/x.idx',
        '# run dir',
        'mkdir -p /r/mnt',
        "cat > /r/x.cfg <<'THFC_EOF'",
        'name = "x"',
        'memory = 512',
        'THFC_EOF',
        'xl create -c /r/x.cfg',
        '# after the guest has stopped:',
        'xl destroy x',
        "rm -rf '/r dir'",
        '',
      ].join('\n'),
    );
  });

  it('is valid sh (checked by sh -n)', () => {
    expect(() => execFileSync('/bin/sh', ['-n'], { input: renderPlan(plan) })).not.toThrow();
  });
});
