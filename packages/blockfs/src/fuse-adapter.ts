import { constants, readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Logger, SILENT_LOGGER } from '@thfc/store';

/**
 * The only importer of fuse-native (libfuse 2.9). It shows a flat directory
 * of read-only files plus a `.thfc/` directory of virtual status files, and
 * turns every failure into an errno: a reader gets EIO, never wrong bytes.
 */

// fuse-native is CommonJS without types. It is loaded at the first mount, not at import: its binding links
// libfuse, and what imports this module without mounting (`httpstorged nbd`) must start where libfuse is absent.
// biome-ignore lint/suspicious/noExplicitAny: untyped CommonJS module; its surface is wrapped right here
let fuseNative: any;
// biome-ignore lint/suspicious/noExplicitAny: as above
function loadFuse(): any {
  fuseNative ??= createRequire(import.meta.url)('fuse-native');
  return fuseNative;
}

export interface ImageFile {
  readonly name: string;
  readonly size: number;
  /** Opens a handle; each handle gets its own read state (sequential detection; `direct`: opened with O_DIRECT). */
  open(options: { direct: boolean }): ImageHandle;
}

export interface ImageHandle {
  read(buf: Buffer, length: number, position: number): Promise<number>;
  /** read() answered now, when it can be without waiting; undefined means call read(). Never throws. */
  readNow?(buf: Buffer, length: number, position: number): number | undefined;
}

export interface VirtualFile {
  readonly name: string;
  /** The current content; read at open, so one open sees one consistent snapshot. */
  content(): Buffer;
}

export interface FuseMountOptions {
  readonly mountpoint: string;
  readonly allowOther?: boolean | undefined;
  readonly fsname?: string | undefined;
}

/**
 * Status files change between the kernel's getattr and open, and the kernel
 * clips reads at the size getattr gave. Padding with trailing spaces (still
 * valid JSON) to a 64 KiB step, with 1 KiB of slack, keeps both answers the
 * same size unless the content grows by more than the slack in between.
 */
function padded(content: Buffer): Buffer {
  const size = Math.ceil((content.length + 1024) / 65536) * 65536;
  const out = Buffer.alloc(size, 0x20);
  content.copy(out);
  out[size - 1] = 0x0a;
  return out;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const STATUS_DIR = '.thfc';

export class FuseMount {
  private fuse: { mount(cb: (e?: Error) => void): void; unmount(cb: (e?: Error) => void): void } | undefined;
  private readonly handles = new Map<number, ImageHandle | Buffer>();
  private nextFd = 10;
  private readonly started = new Date();
  /** This mount's descriptors of /dev/fuse: libfuse closes them when the kernel ends the session. */
  private deviceFds: number[] = [];

  constructor(
    private readonly components: { images: readonly ImageFile[]; status: readonly VirtualFile[]; logger?: Logger },
    private readonly options: FuseMountOptions,
  ) {}

  private get logger(): Logger {
    return this.components.logger ?? SILENT_LOGGER;
  }

  private stat(mode: number, size: number, mtime = this.started) {
    return {
      mtime,
      atime: mtime,
      ctime: mtime,
      nlink: 1,
      size,
      mode,
      uid: 0,
      gid: 0,
      blksize: 4096,
      blocks: Math.ceil(size / 512),
    };
  }

  private lookup(
    path: string,
  ):
    | { kind: 'root' }
    | { kind: 'dir' }
    | { kind: 'image'; file: ImageFile }
    | { kind: 'status'; file: VirtualFile }
    | undefined {
    if (path === '/') return { kind: 'root' };
    if (path === `/${STATUS_DIR}`) return { kind: 'dir' };
    if (path.startsWith(`/${STATUS_DIR}/`)) {
      const file = this.components.status.find((f) => `/${STATUS_DIR}/${f.name}` === path);
      return file ? { kind: 'status', file } : undefined;
    }
    const file = this.components.images.find((f) => `/${f.name}` === path);
    return file ? { kind: 'image', file } : undefined;
  }

  private ops() {
    type Cb = (err: number, ...rest: unknown[]) => void;
    const Fuse = loadFuse();
    return {
      getattr: (path: string, cb: Cb) => {
        const hit = this.lookup(path);
        if (!hit) return cb(Fuse.ENOENT);
        if (hit.kind === 'root' || hit.kind === 'dir') return cb(0, this.stat(S_IFDIR | 0o555, 4096));
        if (hit.kind === 'image') return cb(0, this.stat(S_IFREG | 0o444, hit.file.size));
        // Status files change: a fresh mtime makes auto_cache drop stale pages at the next open.
        return cb(0, this.stat(S_IFREG | 0o444, padded(hit.file.content()).length, new Date()));
      },
      readdir: (path: string, cb: Cb) => {
        if (path === '/') return cb(0, [...this.components.images.map((f) => f.name), STATUS_DIR]);
        if (path === `/${STATUS_DIR}`)
          return cb(
            0,
            this.components.status.map((f) => f.name),
          );
        return cb(Fuse.ENOTDIR);
      },
      open: (path: string, flags: number, cb: Cb) => {
        const hit = this.lookup(path);
        if (!hit) return cb(Fuse.ENOENT);
        if ((flags & 3) !== 0) return cb(Fuse.EROFS);
        if (hit.kind === 'root' || hit.kind === 'dir') return cb(Fuse.EISDIR);
        const fd = this.nextFd++;
        this.handles.set(
          fd,
          hit.kind === 'image'
            ? hit.file.open({ direct: (flags & (constants.O_DIRECT ?? 0)) !== 0 })
            : padded(hit.file.content()),
        );
        return cb(0, fd);
      },
      release: (_path: string, fd: number, cb: Cb) => {
        this.handles.delete(fd);
        cb(0);
      },
      read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
        this.read(path, fd, buf, len, pos, cb, Fuse),
      statfs: (_path: string, cb: Cb) => cb(0, this.statfs()),
    };
  }

  /**
   * One FUSE read: a status file from its snapshot; an image slice answered
   * within the callback when its blocks are ready (readNow), else by read(),
   * whose failure the reader gets as EIO, logged.
   */
  private read(
    path: string,
    fd: number,
    buf: Buffer,
    len: number,
    pos: number,
    cb: (err: number, ...rest: unknown[]) => void,
    Fuse: { EBADF: number; EIO: number },
  ) {
    const h = this.handles.get(fd);
    if (h === undefined) return cb(Fuse.EBADF);
    if (Buffer.isBuffer(h)) {
      if (pos >= h.length) return cb(0);
      return cb(h.copy(buf, 0, pos, Math.min(h.length, pos + len)));
    }
    let now: number | undefined;
    try {
      now = h.readNow?.(buf, len, pos);
    } catch (e) {
      // readNow must not throw; if a bug makes it, the read takes the path that reports errors properly
      // rather than an uncaught exception taking the whole mount down.
      this.logger.fault(`internal error in the fast read path of ${path}: ${(e as Error)?.stack ?? e}`);
    }
    if (now !== undefined) return cb(now);
    h.read(buf, len, pos).then(
      (n) => cb(n),
      (e) => {
        this.logger.fault(`EIO to a reader of ${path}: ${(e as Error)?.message ?? e}`);
        cb(Fuse.EIO);
      },
    );
  }

  /** A read-only file system as full as its images: no block or inode free. */
  private statfs() {
    let blocks = 0;
    for (const f of this.components.images) blocks += Math.ceil(f.size / 4096);
    return {
      bsize: 4096,
      frsize: 4096,
      blocks,
      bfree: 0,
      bavail: 0,
      files: this.components.images.length,
      ffree: 0,
      favail: 0,
      fsid: 0,
      flag: 1,
      namemax: 255,
    };
  }

  async mount(): Promise<void> {
    const Fuse = loadFuse();
    const fuse = new Fuse(this.options.mountpoint, this.ops(), {
      // Reads are bounded by the image reader's own timeout; fuse-native's 15 s default would cut slow mirrors short.
      timeout: false,
      // Images never change: the kernel may keep their pages across opens; status files bump their mtime.
      autoCache: true,
      allowOther: this.options.allowOther ?? false,
      fsname: this.options.fsname ?? 'thfc',
      subtype: 'thfc',
      // Immutable names and sizes: let the kernel cache lookups and attributes for a while.
      entryTimeout: 60,
      attrTimeout: 1,
      // auto_cache trusts its cached attributes for ac_attr_timeout (default: attr_timeout, 1 s) and would keep
      // serving an old status file from the page cache within that second; images keep their pages regardless.
      acAttrTimeout: 0.001,
    });
    const before = new Set(fuseDeviceFds());
    await new Promise<void>((resolve, reject) => fuse.mount((e?: Error) => (e ? reject(e) : resolve())));
    this.fuse = fuse;
    this.deviceFds = fuseDeviceFds().filter((fd) => !before.has(fd));
  }

  /**
   * Whether the kernel still holds this mount's session: true until the last
   * user of a detached mount is gone (a lazy unmount leaves it serving them),
   * false once it is unmounted and libfuse has closed its /dev/fuse descriptor.
   */
  sessionOpen(): boolean {
    const open = new Set(fuseDeviceFds());
    return this.deviceFds.some((fd) => open.has(fd));
  }

  /** Unmounts, lazily (fuse-native runs `fusermount -u -z`); resolves false if libfuse did not confirm within `timeoutMs` (the caller then lazily detaches). */
  async unmount(timeoutMs = 5000): Promise<boolean> {
    const fuse = this.fuse;
    if (!fuse) return true;
    this.fuse = undefined;
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      fuse.unmount(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }
}

/** This process's descriptors open on /dev/fuse. */
function fuseDeviceFds(): number[] {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  return fds.filter((fd) => linkOf(`/proc/self/fd/${fd}`) === '/dev/fuse').map(Number);
}

function linkOf(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
