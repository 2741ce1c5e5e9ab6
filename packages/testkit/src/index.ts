export { type CapturedOutput, capturedOutput } from './captured-output.js';
// Encoded blocks and images (the whole module is fixtures).
export * from './image-fixtures.js';
export { type CommandResult, type RunOptions, runCommand } from './run-command.js';
export { storeFiles } from './store-files.js';
export { Swtpm } from './swtpm.js';
export { type TempDir, tempDir } from './temp-dir.js';
