export { type CapturedOutput, capturedOutput } from './captured-output.js';
export {
  blockOf,
  CREATED,
  corrupted,
  indexHeader,
  makeBlock,
  makeImage,
  patternBytes,
  rawBlock,
  type TestBlock,
  type TestImage,
} from './image-fixtures.js';
export { type CommandResult, type RunOptions, runCommand } from './run-command.js';
export { storeFiles } from './store-files.js';
export { Swtpm } from './swtpm.js';
export { type TempDir, tempDir } from './temp-dir.js';
