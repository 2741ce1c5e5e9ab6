import type { ProbeResult } from './kvm-probe.js';
import type { Accel, AccelRequest } from './vm-spec.js';

export interface AccelChoice {
  readonly accel: Accel;
  /** One line for the user: why this accelerator. */
  readonly reason: string;
  /** A KVM failure at run time may be retried under TCG: only when KVM was chosen automatically. */
  readonly retryWithTcg: boolean;
}

/**
 * The accelerator for a run. Forced choices are obeyed (a forced KVM that
 * fails is an error, not a silent slowdown); `auto` follows the probe.
 */
export function chooseAccel(request: AccelRequest, probe: ProbeResult | undefined): AccelChoice {
  if (request === 'tcg') return { accel: 'tcg', reason: 'TCG forced (--no-kvm or --accel tcg)', retryWithTcg: false };
  if (request === 'kvm') return { accel: 'kvm', reason: 'KVM forced (--accel kvm)', retryWithTcg: false };
  if (probe?.works)
    return { accel: 'kvm', reason: `KVM: ${probe.reason}${probe.cached ? ' (cached)' : ''}`, retryWithTcg: true };
  return {
    accel: 'tcg',
    reason: `TCG: ${probe ? `KVM does not work here: ${probe.reason}` : 'KVM not probed'}${probe?.cached ? ' (cached answer)' : ''}`,
    retryWithTcg: false,
  };
}
