import { MirrorUnavailableError } from '@thfc/format';

/**
 * A transfer abandoned by the low-speed limit (`--low-speed`): the mirror was
 * unavailable for this block, as any MirrorUnavailableError, but it did
 * answer, only too slowly. The request window weighs it as a stall, not as
 * congestion, and failover gives a block a few more rounds for stalls.
 */
export class LowSpeedError extends MirrorUnavailableError {}
