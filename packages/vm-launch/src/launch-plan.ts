import { commandLine } from './command-line.js';

/**
 * What a boot does, step by step, as data: --dry-run prints it as a shell
 * script, and the engines other than qemu run their part of it. Pure.
 */

export type Engine = 'qemu' | 'xen' | 'virtualbox';

export interface PlanStep {
  readonly program: string;
  readonly args: readonly string[];
  /** Printed above the command by --dry-run. */
  readonly comment?: string | undefined;
}

export interface PlanFile {
  readonly path: string;
  readonly content: string;
}

export interface LaunchPlan {
  readonly engine: Engine;
  /** Printed as comments at the top: the accelerator and why, caveats of the engine. */
  readonly notes: readonly string[];
  /** Done by thfc-vm itself: mount, kernel download, overlay. */
  readonly prepare: readonly PlanStep[];
  readonly files: readonly PlanFile[];
  /** Engine commands that set the guest up (VirtualBox: createvm, modifyvm…). */
  readonly setup: readonly PlanStep[];
  /** The command that runs the guest until it stops. */
  readonly run: PlanStep;
  /** Engine commands after the guest stopped (failures ignored). */
  readonly teardown: readonly PlanStep[];
  /** Done by thfc-vm itself: remove the overlay, unmount. */
  readonly cleanup: readonly PlanStep[];
}

const HEREDOC_END = 'THFC_EOF';

export function renderPlan(plan: LaunchPlan): string {
  const out: string[] = [
    '#!/bin/sh',
    `# thfc-vm --dry-run (engine ${plan.engine}): the commands a boot runs, in order.`,
  ];
  for (const n of plan.notes) out.push(`# ${n}`);
  const step = (s: PlanStep) => {
    if (s.comment) out.push(`# ${s.comment}`);
    out.push(commandLine(s.program, s.args));
  };
  plan.prepare.forEach(step);
  for (const f of plan.files) {
    out.push(`cat > ${commandLine(f.path, [])} <<'${HEREDOC_END}'`, f.content.replace(/\n$/, ''), HEREDOC_END);
  }
  plan.setup.forEach(step);
  step(plan.run);
  if (plan.teardown.length || plan.cleanup.length) out.push('# after the guest has stopped:');
  plan.teardown.forEach(step);
  plan.cleanup.forEach(step);
  return `${out.join('\n')}\n`;
}
