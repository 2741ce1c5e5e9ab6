export { capturedOutput } from './captured-output.js';
export type { TestBlock, TestImage } from './image-fixtures.js';
export {
  blockOf,
  CREATED,
  corrupted,
  indexHeader,
  makeBlock,
  makeImage,
  patternBytes,
  rawBlock,
} from './image-fixtures.js';
export type { CommandResult } from './run-command.js';
export { runCommand } from './run-command.js';
export { storeFiles } from './store-files.js';
export { Swtpm } from './swtpm.js';
export type { TempDir } from './temp-dir.js';
export { tempDir } from './temp-dir.js';
