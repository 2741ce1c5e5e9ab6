export { parseLog } from './measurement-event.js';
export type { PcrExtender } from './measurement-log.js';
export { MeasurementLog } from './measurement-log.js';
export { Tpm2Tools } from './tpm.js';
export { TpmExtender } from './tpm-extender.js';
export { runVerify } from './verify.js';
