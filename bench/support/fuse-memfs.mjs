#!/usr/bin/env node
// The FUSE ceiling for `bench mount`: a minimal fuse-native (libfuse 2.9) file system that serves
// one read-only file from a Buffer in RAM, as limits.md recipe 4. No caching options, no per-read
// work beyond one memcpy: whatever a real daemon does on top of this is its own cost.
//
//   node bench/support/fuse-memfs.mjs IMAGE MOUNTPOINT [NAME]
//
// Prints `ready pid=<pid> bytes=<n>` on stdout once mounted. Unmounts and exits when stdin closes
// (the bench's way to stop it) or on SIGTERM/SIGINT/SIGHUP. libfuse installs its own signal
// handlers when it mounts, so ours are put back afterwards (as packages/blockfs/src/cli.ts does);
// if libfuse does not confirm the unmount within 5 s, `fusermount -u -z` detaches it.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const Fuse = createRequire(join(REPO_ROOT, 'package.json'))('fuse-native');

const [imagePath, mountArg, nameArg] = process.argv.slice(2);
if (!imagePath || !mountArg) {
  process.stderr.write('usage: fuse-memfs.mjs IMAGE MOUNTPOINT [NAME]\n');
  process.exit(2);
}
const mountpoint = resolve(mountArg);
const name = nameArg ?? basename(imagePath);
const img = readFileSync(imagePath);
const now = new Date();

const stat = (mode, size) => ({
  mtime: now,
  atime: now,
  ctime: now,
  nlink: 1,
  size,
  mode,
  uid: 0,
  gid: 0,
  blksize: 4096,
  blocks: Math.ceil(size / 512),
});

const ops = {
  readdir: (path, cb) => (path === '/' ? cb(0, [name]) : cb(Fuse.ENOTDIR)),
  getattr: (path, cb) => {
    if (path === '/') return cb(0, stat(0o40555, 4096));
    if (path === `/${name}`) return cb(0, stat(0o100444, img.length));
    return cb(Fuse.ENOENT);
  },
  open: (path, _flags, cb) => (path === `/${name}` ? cb(0, 42) : cb(Fuse.ENOENT)),
  release: (_path, _fd, cb) => cb(0),
  read: (_path, _fd, buf, len, pos, cb) => {
    if (pos >= img.length) return cb(0);
    return cb(img.copy(buf, 0, pos, Math.min(pos + len, img.length)));
  },
};

const fuse = new Fuse(mountpoint, ops, { force: true, fsname: 'memfs', timeout: false });

let stopping = false;
function stop(why) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`fuse-memfs: ${why}: unmounting ${mountpoint}\n`);
  const force = setTimeout(() => {
    try {
      execFileSync('fusermount', ['-u', '-z', mountpoint], { stdio: 'ignore' });
    } catch {}
    process.exit(0);
  }, 5000);
  fuse.unmount(() => {
    clearTimeout(force);
    process.exit(0);
  });
}

fuse.mount((err) => {
  if (err) {
    process.stderr.write(`fuse-memfs: cannot mount ${mountpoint}: ${err.message}\n`);
    process.exit(1);
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.removeAllListeners(sig);
    process.on(sig, () => stop(sig));
  }
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
  process.stdout.write(`ready pid=${process.pid} bytes=${img.length}\n`);
});
