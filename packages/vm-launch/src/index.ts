export type { BootOptions, BootResult } from './boot.js';
export { runBoot } from './boot.js';
export { runList } from './list.js';
export { runMenu } from './run-menu.js';
