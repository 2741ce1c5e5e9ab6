// The bootable test guest: a real Debian kernel and busybox on an ext4 root disk, built from Debian
// packages with `apt-get download` and `dpkg -x` (the package registry is the only network it touches).
//
//   kernel   linux-image-<abi> (what linux-image-amd64 points at): the uncompressed PVH vmlinux when the
//            bzImage's payload is xz (qemu boots it ~3.7 s faster under TCG), else the bzImage itself
//   initrd   busybox-static + the virtio/ext4 modules, modinfo dependencies first; /init loads them,
//            mounts root= (default /dev/vda) and switch_roots into it
//   disk     256 MiB ext4: /sbin/init (busybox sh), /etc/thfc-release, busybox, the kernel and the initrd's
//            modules, plus real OS content: the kernel package's own module tree for kernel/{net,sound,crypto,lib}
//            (~900 files, ~70 MB; the rest of the disk stays zero). Its init runs a "boot services" step, then
//            prints `THFC-GUEST-MARKER <contents of /etc/thfc-release>` on the serial console, proves the disk
//            takes writes when mounted rw (`THFC-GUEST-WROTE ok`), and powers off
//
// The boot services step is the workload a distribution's boot puts on its root disk: one busybox process
// reads, one after another, the files listed in /etc/thfc-boot-files (~10 MB in ~160 files of that content,
// each under 1 MiB), ordered by the SHA-256 of their paths, which has nothing to do with where mkfs placed
// them. So the boot makes a hundred-odd reads that each wait for the one before and land all over the disk,
// as a systemd boot starting services does (the original system's ext2optimizer and boot profiles attacked
// exactly that). Measured over HTTP: ~17 MB read by the guest (kernel read-ahead included) from ~155 of the
// image's 256 KiB blocks, about as many reads waiting one after another; the reading itself adds well under a
// second to a ~4 s TCG boot. Recipe 1 had no such step: its boot read 2.7 MB from 12 blocks in ~13 dependent
// reads, and TCG emulation, not I/O, was all a boot measured. The list is fixed per kernel package version.
//
// Built once per (kernel package version, busybox version, recipe) under the cache directory and reused:
// a repeated test run costs two `apt-cache` calls. Used by test/vm-*.test.ts, test/trust-chain.test.ts,
// bench/boot.mjs, bench/wan.mjs and scripts/demo.mjs;
// `node test/support/guest-image.mjs [CACHE-DIR]` builds it and prints the manifest.
//
// Needs: apt (with package lists), dpkg, mkfs.ext4 (e2fsprogs), xz (xz-utils).

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

/** Bump when anything below changes what gets built, so caches of the old recipe are not reused. */
export const GUEST_RECIPE = 2;
/** Outside the repo and /tmp so that it survives clean clones and reboots of a CI runner's workspace. */
export const DEFAULT_GUEST_CACHE = '/var/tmp/thfc-test-cache/guest';
export const MARKER_PREFIX = 'THFC-GUEST-MARKER';
export const WROTE_LINE = 'THFC-GUEST-WROTE ok';
/**
 * The kernel command line the guest is meant to boot with (root= and rw are read by the initramfs).
 * no_timer_check: under TCG on a loaded host the kernel's check that the IO-APIC timer ticks can time out
 * and panic the boot ("IO-APIC + timer doesn't work!", seen once in a WAN bench run with both cores busy);
 * the option skips a check that means nothing in an emulated machine, as distributions do for VM images.
 */
export const GUEST_APPEND = 'console=ttyS0 root=/dev/vda rw quiet panic=-1 no_timer_check';

/** The metapackage that names the current Debian kernel ABI package. */
const KERNEL_METAPACKAGE = 'linux-image-amd64';
const BUSYBOX_PACKAGE = 'busybox-static';
/** What the guest needs as modules on a Debian kernel: the virtio PCI transport, the disk, ext4 and its checksum. */
const MODULE_ROOTS = ['virtio_pci', 'virtio_blk', 'ext4', 'crc32c_generic'];
/** Room for the kernel (~8 MB), busybox (2 MB) and the module trees (~70 MB), most of the disk left as zero blocks. */
const DISK_MIB = 256;
/**
 * The kernel package's module subtrees copied to the root disk as its OS content: real files, ~900 of them,
 * mostly 10-200 KB, as a distribution's /usr is. Not drivers/ (276 MB): it would make the disk and the
 * fault runs' full-disk comparisons four times longer without changing the shape of the boot.
 */
const CONTENT_TREES = ['kernel/net', 'kernel/sound', 'kernel/crypto', 'kernel/lib'];
/**
 * What the boot services step reads: files of CONTENT_TREES in SHA-256-of-path order until this many bytes.
 * ~10 MB lands on ~125 of the disk's 256 KiB blocks (thfc-pack's default block size; ~155 with the rest of
 * the boot: superblock, inode tables, directories, busybox): many dependent reads, yet under a second of
 * reading under TCG (a distribution reads more, but TCG would then measure emulation rather than the disk).
 */
const BOOT_READ_BYTES = 10 * 1024 * 1024;
/** Larger files are skipped so that one (lib/test_bpf.ko is 4.8 MB) cannot take half of the budget. */
const BOOT_FILE_MAX_BYTES = 1024 * 1024;
/**
 * The optional boot payload (`payloadMiB`): one file the init reads whole, after the boot services step and
 * before the marker, as a boot that loads a large application or its data does. Its bytes are the kernel
 * package's drivers/ modules, concatenated in path order (real, compressible content, not zeros or random).
 */
const PAYLOAD_PATH = '/var/lib/thfc-payload';
const PAYLOAD_TREE = 'kernel/drivers';
/** Fixed, so that the same packages give the same file system identity from run to run. */
const DISK_UUID = '7a1c0de5-7e57-4b00-8000-000000000001';
/** apt and dpkg steps are local or package-registry bound; ten minutes means something is stuck. */
const STEP_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * @typedef {object} GuestImage
 * @property {string} dir        the cache entry holding the files below
 * @property {string} kernel     vmlinux (PVH ELF) or vmlinuz
 * @property {string} initrd     initrd.gz
 * @property {string} disk       disk.img, raw ext4
 * @property {number} diskBytes
 * @property {string} marker     contents of /etc/thfc-release
 * @property {string} markerLine the exact line the guest prints
 * @property {string} append     kernel command line to boot with
 * @property {{kernelPackage: string, kernelVersion: string, kernelRelease: string, busybox: string}} versions
 * @property {string[]} modules  load order
 * @property {{files: number, bytes: number}} bootFiles what the root init's boot services step reads
 * @property {{path: string, bytes: number} | null} payload the boot payload, read whole before the marker
 */

/**
 * thfc-vm's flags that boot `guest` directly: its kernel, initrd and command line.
 * @param {{kernel: string, initrd: string, append: string}} guest
 * @returns {string[]}
 */
export function guestKernelArgs(guest) {
  return ['--kernel', guest.kernel, '--initrd', guest.initrd, '--append', guest.append];
}

/**
 * Returns the cached guest for the current package versions, building it first when needed.
 * Safe to call from several processes at once: each builds in its own temp dir and the first
 * rename wins.
 * `payloadMiB` (default 0: none) adds the boot payload (PAYLOAD_PATH), read whole before the marker: a guest
 * whose boot reads tens of MB (issue 12's T5 asks for at least 60 MB). It is a separate cache entry; without
 * it the disk is byte for byte the recipe's.
 * @param {{cacheDir?: string, log?: (message: string) => void, payloadMiB?: number}} [options]
 * @returns {Promise<GuestImage>}
 */
export async function buildGuestImage({
  cacheDir = process.env.THFC_GUEST_CACHE || DEFAULT_GUEST_CACHE,
  log = () => {},
  payloadMiB = 0,
} = {}) {
  if (!Number.isInteger(payloadMiB) || payloadMiB < 0) throw new Error(`payloadMiB: not a whole number: ${payloadMiB}`);
  const versions = await resolveVersions();
  const key =
    `${versions.kernelPackage}_${versions.kernelVersion}+busybox_${versions.busybox}+r${GUEST_RECIPE}${payloadMiB ? `+p${payloadMiB}` : ''}`.replace(
      /[^A-Za-z0-9._+-]/g,
      '_',
    );
  const dir = join(cacheDir, key);
  const cached = await readManifest(dir);
  if (cached) return cached;

  await mkdir(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `.tmp-${key}-${process.pid}-${Date.now()}`);
  await mkdir(tmp, { recursive: true });
  try {
    log(`building the test guest ${key} (one time)`);
    const out = join(tmp, 'out');
    await mkdir(out);
    const work = join(tmp, 'work');
    await mkdir(work);
    await sh(
      'apt-get',
      [
        '-q',
        '-o',
        'APT::Sandbox::User=root',
        'download',
        `${versions.kernelPackage}=${versions.kernelVersion}`,
        `${BUSYBOX_PACKAGE}=${versions.busybox}`,
      ],
      { cwd: work },
    );
    const debs = (await readdir(work)).filter((f) => f.endsWith('.deb'));
    const kdeb = debs.find((f) => f.startsWith(`${versions.kernelPackage}_`));
    const bdeb = debs.find((f) => f.startsWith(`${BUSYBOX_PACKAGE}_`));
    if (!kdeb || !bdeb) throw new Error(`apt-get download gave ${debs.join(', ') || 'nothing'}`);
    await sh('dpkg', ['-x', join(work, kdeb), join(work, 'kpkg')]);
    await sh('dpkg', ['-x', join(work, bdeb), join(work, 'bpkg')]);

    const release = versions.kernelRelease;
    const vmlinuz = join(work, 'kpkg/boot', `vmlinuz-${release}`);
    const busybox = join(work, 'bpkg/bin/busybox');
    const kernel = await extractVmlinux(vmlinuz, join(out, 'vmlinux'), log);
    const moduleTree = join(work, 'kpkg/lib/modules', release);
    const modules = await resolveModules(join(moduleTree, 'kernel'), MODULE_ROOTS);

    // initramfs: busybox, the modules, /init
    const entries = [
      { path: 'bin', mode: 0o40755 },
      { path: 'dev', mode: 0o40755 },
      { path: 'dev/console', mode: 0o20600, rdev: [5, 1] },
      { path: 'lib', mode: 0o40755 },
      { path: 'lib/modules', mode: 0o40755 },
      { path: 'newroot', mode: 0o40755 },
      { path: 'proc', mode: 0o40755 },
      { path: 'sys', mode: 0o40755 },
      { path: 'bin/busybox', mode: 0o100755, data: await readFile(busybox) },
      { path: 'init', mode: 0o100755, data: Buffer.from(initramfsInit(modules.map((m) => m.name))) },
    ];
    for (const m of modules)
      entries.push({ path: `lib/modules/${m.name}.ko`, mode: 0o100644, data: await readFile(m.path) });
    await writeFile(join(out, 'initrd.gz'), gzipSync(newcArchive(entries), { level: 6 }));

    // root disk
    const marker = `thfc test guest: Debian kernel ${release} (${versions.kernelVersion}), busybox ${versions.busybox}`;
    const stage = join(work, 'stage');
    for (const d of ['bin', 'sbin', 'etc', 'dev', 'proc', 'sys', 'tmp', 'var', 'boot', `lib/modules/${release}`])
      await mkdir(join(stage, d), { recursive: true });
    await writeFile(join(stage, 'bin/busybox'), await readFile(busybox), { mode: 0o755 });
    await chmod(join(stage, 'bin/busybox'), 0o755);
    await symlink('busybox', join(stage, 'bin/sh'));
    await writeFile(join(stage, 'sbin/init'), rootInit(payloadMiB > 0), { mode: 0o755 });
    await chmod(join(stage, 'sbin/init'), 0o755);
    await writeFile(join(stage, 'etc/thfc-release'), `${marker}\n`);
    await writeFile(join(stage, `boot/vmlinuz-${release}`), await readFile(vmlinuz));
    for (const m of modules)
      await writeFile(join(stage, `lib/modules/${release}/${m.name}.ko`), await readFile(m.path));
    const content = [];
    for (const tree of CONTENT_TREES)
      content.push(...(await copyTree(moduleTree, tree, stage, `lib/modules/${release}`)));
    const bootFiles = bootFileList(content);
    await writeFile(join(stage, 'etc/thfc-boot-files'), `${bootFiles.map((f) => f.path).join('\n')}\n`);
    const payloadBytes = payloadMiB
      ? await writePayload(join(moduleTree, PAYLOAD_TREE), join(stage, PAYLOAD_PATH), payloadMiB * 1024 * 1024)
      : 0;
    const disk = join(out, 'disk.img');
    await sh('mkfs.ext4', [
      '-q',
      '-F',
      '-b',
      '4096',
      '-L',
      'thfc-root',
      '-U',
      DISK_UUID,
      '-E',
      'root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0',
      '-d',
      stage,
      disk,
      `${DISK_MIB}M`,
    ]);

    const manifest = {
      recipe: GUEST_RECIPE,
      key,
      kernel: kernel === join(out, 'vmlinux') ? 'vmlinux' : 'vmlinuz',
      marker,
      append: GUEST_APPEND,
      versions,
      modules: modules.map((m) => m.name),
      bootFiles: { files: bootFiles.length, bytes: bootFiles.reduce((a, f) => a + f.size, 0) },
      payload: payloadBytes ? { path: PAYLOAD_PATH, bytes: payloadBytes } : null,
      diskSha256: createHash('sha256')
        .update(await readFile(disk))
        .digest('hex'),
    };
    if (manifest.kernel === 'vmlinuz') await writeFile(join(out, 'vmlinuz'), await readFile(vmlinuz));
    await writeFile(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      await rename(out, dir);
    } catch (e) {
      if (!['ENOTEMPTY', 'EEXIST'].includes(e.code)) throw e; // another process finished first: use theirs
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const built = await readManifest(dir);
  if (!built) throw new Error(`guest image ${dir} is incomplete after building`);
  log(`test guest ready in ${dir}`);
  return built;
}

/** @returns {Promise<GuestImage | undefined>} */
async function readManifest(dir) {
  let m;
  try {
    m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (m.recipe !== GUEST_RECIPE) return undefined;
  const disk = join(dir, 'disk.img');
  return {
    dir,
    kernel: join(dir, m.kernel),
    initrd: join(dir, 'initrd.gz'),
    disk,
    diskBytes: (await stat(disk)).size,
    diskSha256: m.diskSha256,
    marker: m.marker,
    markerLine: `${MARKER_PREFIX} ${m.marker}`,
    append: GUEST_APPEND, // how to boot it, not part of what was built: the current line, whatever the cache says
    versions: m.versions,
    modules: m.modules,
    bootFiles: m.bootFiles,
    payload: m.payload ?? null,
  };
}

/** Concatenates the files under `tree` in path order into `out` until `bytes`; returns the bytes written. */
async function writePayload(tree, out, bytes) {
  const paths = [];
  const walk = async (dir) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) paths.push(p);
    }
  };
  await walk(tree);
  paths.sort();
  const parts = [];
  let total = 0;
  for (const p of paths) {
    if (total >= bytes) break;
    const data = await readFile(p);
    parts.push(data.subarray(0, bytes - total));
    total += Math.min(data.length, bytes - total);
  }
  if (total < bytes) throw new Error(`${tree} holds only ${total} bytes, not the ${bytes} of the payload`);
  await mkdir(join(out, '..'), { recursive: true });
  await writeFile(out, Buffer.concat(parts));
  return total;
}

/**
 * Copies FROM/TREE to STAGE/INTO/TREE (regular files and directories only) and returns every file copied as
 * {path (as the guest sees it, absolute), size}.
 */
async function copyTree(from, tree, stage, into) {
  const files = [];
  const walk = async (rel) => {
    await mkdir(join(stage, into, rel), { recursive: true });
    for (const e of await readdir(join(from, rel), { withFileTypes: true })) {
      const r = join(rel, e.name);
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const data = await readFile(join(from, r));
        await writeFile(join(stage, into, r), data);
        files.push({ path: `/${join(into, r)}`, size: data.length });
      }
    }
  };
  await walk(tree);
  return files;
}

/**
 * The boot services step's files: in SHA-256-of-path order (fixed, and unrelated to the disk layout), each
 * at most BOOT_FILE_MAX_BYTES, until BOOT_READ_BYTES. @param {{path: string, size: number}[]} files
 */
export function bootFileList(files, budget = BOOT_READ_BYTES, maxFile = BOOT_FILE_MAX_BYTES) {
  const hash = (p) => createHash('sha256').update(p).digest('hex');
  const ordered = files
    .filter((f) => f.size > 0 && f.size <= maxFile)
    .map((f) => ({ ...f, key: hash(f.path) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const out = [];
  let total = 0;
  for (const f of ordered) {
    if (total >= budget) break;
    out.push({ path: f.path, size: f.size });
    total += f.size;
  }
  return out;
}

async function resolveVersions() {
  const override = process.env.THFC_GUEST_KERNEL_PACKAGE;
  let kernelPackage = override;
  if (!kernelPackage) {
    const deps = await sh('apt-cache', ['depends', '--important', KERNEL_METAPACKAGE]).catch((e) => {
      throw new Error(`${e.message}\n(is apt set up? run: apt-get update)`);
    });
    kernelPackage = /Depends:\s*(linux-image-\S+)/.exec(deps)?.[1];
    if (!kernelPackage) throw new Error(`cannot tell which kernel ${KERNEL_METAPACKAGE} depends on:\n${deps}`);
  }
  const kernelVersion = await candidateVersion(kernelPackage);
  const busybox = await candidateVersion(BUSYBOX_PACKAGE);
  return { kernelPackage, kernelVersion, kernelRelease: kernelPackage.replace(/^linux-image-/, ''), busybox };
}

async function candidateVersion(pkg) {
  const text = await sh('apt-cache', ['show', '--no-all-versions', pkg]);
  const v = /^Version:\s*(\S+)/m.exec(text)?.[1];
  if (!v) throw new Error(`apt-cache knows no version of ${pkg} (run: apt-get update)`);
  return v;
}

/**
 * Debian's bzImage carries the kernel as an xz stream; the ELF inside is PVH-bootable, which skips the
 * in-guest decompression (~3.7 s under TCG). Falls back to the bzImage when there is no xz payload.
 */
async function extractVmlinux(vmlinuz, out, log) {
  const bytes = await readFile(vmlinuz);
  const at = bytes.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) {
    log('kernel payload is not xz: booting the bzImage (slower under TCG)');
    return vmlinuz;
  }
  const elf = await shBytes('xz', ['-dc', '--single-stream'], bytes.subarray(at));
  if (elf.subarray(0, 4).toString('latin1') !== '\x7fELF')
    throw new Error(`${vmlinuz}: xz payload is not an ELF kernel`);
  await writeFile(out, elf);
  return out;
}

/**
 * The modules `roots` need, dependencies first, from the `depends=` field of each module's modinfo
 * (the package ships no modules.dep: depmod runs at install time).
 * @returns {Promise<{name: string, path: string}[]>}
 */
export async function resolveModules(tree, roots) {
  const byName = new Map();
  const walk = async (d) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ko')) byName.set(e.name.slice(0, -3).replaceAll('-', '_'), p);
    }
  };
  await walk(tree);
  const order = [];
  const seen = new Set();
  const visit = async (name, chain) => {
    if (seen.has(name)) return;
    if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const path = byName.get(name);
    if (!path)
      throw new Error(`module ${name} not found under ${tree} (built into this kernel? then drop it from the roots)`);
    for (const dep of modinfoDepends(await readFile(path))) await visit(dep, [...chain, name]);
    seen.add(name);
    order.push({ name, path });
  };
  for (const r of roots) await visit(r, []);
  return order;
}

/** `depends=a,b` from a .ko's .modinfo strings. */
export function modinfoDepends(ko) {
  const at = ko.indexOf(Buffer.from('\0depends='));
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const value = ko.subarray(at + '\0depends='.length, end).toString('latin1');
  return value ? value.split(',').map((s) => s.replaceAll('-', '_')) : [];
}

/**
 * A cpio "newc" archive (what the kernel unpacks as an initramfs), written here so no cpio tool is
 * needed and the bytes do not depend on the host (mtime 0, inode = entry number).
 * @param {{path: string, mode: number, data?: Uint8Array, rdev?: [number, number]}[]} entries
 */
export function newcArchive(entries) {
  const parts = [];
  const pad = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  const add = (name, mode, data, rdev, ino) => {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'latin1');
    parts.push(header, nameBytes, pad(header.length + nameBytes.length), data, pad(data.length));
  };
  for (const [i, e] of entries.entries()) add(e.path, e.mode, e.data ?? Buffer.alloc(0), e.rdev ?? [0, 0], i + 1);
  add('TRAILER!!!', 0, Buffer.alloc(0), [0, 0], 0);
  return Buffer.concat(parts);
}

function initramfsInit(modules) {
  return `#!/bin/busybox sh
# thfc test guest initramfs: load the disk drivers, mount root=, switch_root into it.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
root=/dev/vda
mode=ro
for a in $(cat /proc/cmdline); do
  case "$a" in root=*) root="\${a#root=}" ;; rw) mode=rw ;; ro) mode=ro ;; esac
done
for m in ${modules.join(' ')}; do insmod /lib/modules/$m.ko || echo "thfc-initramfs: insmod $m failed"; done
i=0
while [ ! -b "$root" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
if ! mount -t ext4 -o "$mode" "$root" /newroot; then
  echo "THFC-GUEST-FAILED cannot mount $root"
  poweroff -f
fi
umount /proc /sys
umount /dev
exec switch_root /newroot /sbin/init
`;
}

function rootInit(payload = false) {
  return `#!/bin/busybox sh
# thfc test guest, PID 1 on the root disk: start "services" (read the files a boot would, in their
# order, not the disk's), show that the root file system is readable (and writable when mounted rw),
# then power off.
export PATH=/bin
busybox mount -t proc proc /proc
busybox cat $(busybox cat /etc/thfc-boot-files) > /dev/null || echo "thfc-guest: boot services: a read failed"
${payload ? `busybox cat ${PAYLOAD_PATH} > /dev/null || echo "thfc-guest: boot payload: a read failed"\n` : ''}echo "${MARKER_PREFIX} $(busybox cat /etc/thfc-release)"
if busybox grep -qw rw /proc/cmdline; then
  echo "last boot: uptime $(busybox cut -d' ' -f1 /proc/uptime)" > /var/thfc-last-boot && busybox sync && echo "${WROTE_LINE}"
fi
busybox poweroff -f
`;
}

function sh(cmd, args, { cwd } = {}) {
  return shBytes(cmd, args, undefined, { cwd }).then((b) => b.toString('utf8'));
}

/** Runs a command to completion within STEP_TIMEOUT_MS; rejects with its stderr on failure. */
function shBytes(cmd, args, input, { cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => {
      err += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}${e.code === 'ENOENT' ? ' (not installed?)' : ''}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${cmd} ${args.join(' ')}: ${signal ?? `exit ${code}`}\n${err.trim()}`));
    });
    if (input) {
      child.stdin.on('error', () => {}); // a failing child may close its stdin early; 'close' reports it
      child.stdin.end(input);
    }
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const image = await buildGuestImage({
    cacheDir: process.argv[2] || undefined,
    log: (m) => process.stderr.write(`guest-image: ${m}\n`),
  });
  process.stdout.write(`${JSON.stringify(image, null, 2)}\n`);
}
