// The main job (run through scripts/demo.sh, which installs and builds first).
// Each step runs the real command a user would type and prints it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, createReadStream, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const work = resolve(process.env.THFC_DEMO_DIR ?? join(root, '.demo'));
const bin = (name) => join(root, 'node_modules', '.bin', name);

function step(title) {
  process.stdout.write(`\n== ${title}\n`);
}

function run(cmd, args, { quiet = false } = {}) {
  process.stdout.write(`$ ${[cmd, ...args].map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}\n`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write(`demo: ${cmd} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
}

async function sha256(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c);
  return h.digest('hex');
}

rmSync(join(work, 'store'), { recursive: true, force: true });
rmSync(join(work, 'rebuilt.img'), { force: true });
mkdirSync(work, { recursive: true });

step('1. build a sample disk image (ext4 with some files and free space)');
const stage = join(work, 'stage');
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'etc'), { recursive: true });
for (const dir of ['/usr/share/common-licenses', '/usr/share/perl5', '/usr/lib/x86_64-linux-gnu/perl-base']) {
  if (existsSync(dir)) cpSync(dir, join(stage, dir), { recursive: true, dereference: false });
}
writeFileSync(join(stage, 'etc', 'thfc-marker'), 'hello from a thfc image\n');
const image = join(work, 'sample.img');
rmSync(image, { force: true });
run('truncate', ['-s', '96M', image]);
run('mkfs.ext4', [
  '-q',
  '-F',
  '-b',
  '4096',
  '-E',
  'lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0',
  '-d',
  stage,
  image,
]);

step('2. make a signing key (once)');
const key = join(work, 'publisher.key');
if (!existsSync(key)) run(bin('thfc-pack'), ['keygen', key]);
else process.stdout.write(`(reusing ${key})\n`);

step('3. pack it into a signed block store');
const store = join(work, 'store');
run(bin('thfc-pack'), ['pack', image, '--store', store, '--name', 'sample', '--sign', key]);

step('4. inspect the index and check its signature against the publisher key');
run(bin('thfc-pack'), ['inspect', join(store, 'sample.idx'), '--trust', `${key}.pub`]);

step('5. verify every block in the store');
run(bin('thfc-pack'), ['verify', store]);

step('6. rebuild the image from the store and compare byte for byte');
const rebuilt = join(work, 'rebuilt.img');
run(bin('thfc-pack'), ['unpack', join(store, 'sample.idx'), rebuilt]);
run('cmp', [image, rebuilt]);
const [a, b] = await Promise.all([sha256(image), sha256(rebuilt)]);
process.stdout.write(`sha256 original ${a}\nsha256 rebuilt  ${b}\n`);
if (a !== b) {
  process.stderr.write('demo: FAILED: the rebuilt image differs\n');
  process.exit(1);
}
process.stdout.write('\ndemo: OK: packed, signed, verified and rebuilt byte for byte\n');
