export * from './block-source-contract.js';
export * from './fake-source.js';
export * from './sample-catalog.js';
