export * from './swtpm.js';
