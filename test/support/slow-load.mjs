// `node --import THIS bin.js`: when a bin entry (dist/bin.js) loads its command (./cli.js), writes "loading\n"
// on stderr and holds the load for 1.5 s, so a test can send a signal while the command's modules load: the
// moment a busy machine gives a few hundred milliseconds to, and that no timer in a test hits reliably.
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
    import { writeSync } from 'node:fs';
    export async function resolve(specifier, context, next) {
      if (specifier === './cli.js' && context.parentURL?.endsWith('/dist/bin.js')) {
        writeSync(2, 'loading\\n');
        await new Promise((r) => setTimeout(r, 1500));
      }
      return next(specifier, context);
    }
  `)}`,
);
