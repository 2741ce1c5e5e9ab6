// Preloaded (node --require) to stand for a machine without FUSE: loading fuse-native fails as it does
// where libfuse is absent, and /dev/fuse is never opened.
const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'fuse-native') throw new Error('libfuse.so.2: cannot open shared object file (hidden by the test)');
  return load.call(this, request, ...rest);
};
