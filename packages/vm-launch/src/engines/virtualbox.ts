import type { PlanStep } from '../launch-plan.js';
import type { VmSpec } from '../vm-spec.js';

/**
 * VBoxManage commands for the same image: a raw-disk VMDK descriptor that
 * points at the mounted file, attached "immutable" so that VirtualBox keeps
 * the guest's writes in its own differencing image and drops them when the
 * VM stops (VirtualBox's copy-on-write overlay). Pure.
 */

export const VBOX = 'VBoxManage';
const CONTROLLER = 'SATA';

export interface VirtualBoxPlan {
  readonly setup: PlanStep[];
  readonly run: PlanStep;
  readonly teardown: PlanStep[];
  readonly notes: string[];
}

/**
 * `major` is VBoxManage's major version: 7 and later create the raw VMDK with
 * `createmedium --variant RawDisk`, older ones with `internalcommands createrawvmdk`.
 */
export function virtualBoxPlan(
  spec: VmSpec,
  o: { rawDisk: string; runDir: string; major: number | undefined },
): VirtualBoxPlan {
  const vm = spec.name;
  const vmdk = `${o.runDir}/${vm}.vmdk`;
  const setup = setupSteps(spec, vm, vmdk, o.runDir, rawVmdkStep(vmdk, o.rawDisk, o.major));
  const run: PlanStep = {
    program: VBOX,
    args: ['startvm', vm, '--type', spec.display.kind === 'window' ? 'gui' : 'headless'],
    comment: `then wait until \`${VBOX} showvminfo ${vm} --machinereadable\` says VMState="poweroff"`,
  };
  const teardown = teardownSteps(vm, vmdk);
  const notes = ["VirtualBox boots the disk's own boot loader: it has no direct kernel boot (--kernel/--initrd)."];
  if (spec.display.kind === 'vnc')
    notes.push('VirtualBox serves its screen over VRDE (RDP), not VNC: the VM runs headless.');
  return { setup, run, teardown, notes };
}

/** The step that writes the raw-disk VMDK descriptor, in the syntax of VBoxManage `major`. */
function rawVmdkStep(vmdk: string, rawDisk: string, major: number | undefined): PlanStep {
  return (major ?? 7) >= 7
    ? {
        program: VBOX,
        args: [
          'createmedium',
          'disk',
          '--filename',
          vmdk,
          '--format',
          'VMDK',
          '--variant',
          'RawDisk',
          '--property',
          `RawDrive=${rawDisk}`,
        ],
        comment: `a VMDK descriptor whose extent is the image itself (VirtualBox 6: VBoxManage internalcommands createrawvmdk -filename ${vmdk} -rawdisk ${rawDisk})`,
      }
    : {
        program: VBOX,
        args: ['internalcommands', 'createrawvmdk', '-filename', vmdk, '-rawdisk', rawDisk],
        comment: 'a VMDK descriptor whose extent is the image itself',
      };
}

/** Create and register the VM, write the VMDK descriptor, and attach it immutable. */
function setupSteps(spec: VmSpec, vm: string, vmdk: string, runDir: string, rawVmdk: PlanStep): PlanStep[] {
  const serialLog = `${runDir}/serial.log`;
  return [
    { program: VBOX, args: ['createvm', '--name', vm, '--ostype', 'Linux_64', '--basefolder', runDir, '--register'] },
    {
      program: VBOX,
      args: [
        'modifyvm',
        vm,
        '--memory',
        String(spec.memMiB),
        '--cpus',
        String(spec.cpus),
        '--boot1',
        'disk',
        '--boot2',
        'none',
        '--boot3',
        'none',
        '--boot4',
        'none',
        '--uart1',
        '0x3F8',
        '4',
        '--uartmode1',
        'file',
        serialLog,
        '--nic1',
        spec.net === 'user' ? 'nat' : 'none',
      ],
      comment: `the serial console goes to ${serialLog}`,
    },
    rawVmdk,
    {
      program: VBOX,
      args: ['storagectl', vm, '--name', CONTROLLER, '--add', 'sata', '--controller', 'IntelAhci', '--portcount', '1'],
    },
    {
      program: VBOX,
      args: [
        'storageattach',
        vm,
        '--storagectl',
        CONTROLLER,
        '--port',
        '0',
        '--device',
        '0',
        '--type',
        'hdd',
        '--medium',
        vmdk,
        '--mtype',
        'immutable',
      ],
      comment: 'immutable: the guest writes to a differencing image that VirtualBox throws away',
    },
  ];
}

/** Power off and remove the VM. */
function teardownSteps(vm: string, vmdk: string): PlanStep[] {
  // Detach and close the medium before deleting the VM, so --delete removes VirtualBox's files only, never the image.
  return [
    { program: VBOX, args: ['controlvm', vm, 'poweroff'] },
    {
      program: VBOX,
      args: ['storageattach', vm, '--storagectl', CONTROLLER, '--port', '0', '--device', '0', '--medium', 'none'],
    },
    { program: VBOX, args: ['closemedium', 'disk', vmdk] },
    { program: VBOX, args: ['unregistervm', vm, '--delete'] },
    { program: 'rm', args: ['-f', vmdk] },
  ];
}
