/**
 * The few file-system primitives the protocol is built from. They follow the rules of
 * notes/spool-research.md §5: loop on short writes, fdatasync before a file becomes visible,
 * fsync a directory after changing its entries, and never follow a symlink inside the spool.
 *
 * Flushes (fdatasync, fsync) go through libuv's thread pool: they take milliseconds, and the
 * event loop must not wait on them. One exception, fsyncDirSync, is for a step that must not let
 * other work of this process in between. Opening, closing and writing up to SYNC_IO_MAX_BYTES are
 * synchronous calls: from the page cache each takes µs, while a round trip through the pool
 * costs 50–100 µs of CPU on these machines (bench/README.md, results of 2026-11-27).
 */
import { constants as C, closeSync, fchmodSync, fdatasync, fsync, fsyncSync, openSync, unlinkSync, write, writeSync } from 'node:fs';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { isErrno } from './errors.js';

/** link() failures that mean "this file system has no hard links (here)": copy or rename instead. */
export const NO_LINK_CODES = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK', 'EXDEV'];

/** Reads and writes up to this size are made on the JS thread; larger ones go through the pool. */
export const SYNC_IO_MAX_BYTES = 256 * 1024;
const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);
const writeAsync = promisify(write);

/** Permission bits of what a spool creates. */
export interface Modes {
  readonly dir: number;
  readonly file: number;
}

/** The default: only the owner may read or write anything in the spool. */
export const PRIVATE_MODES: Modes = Object.freeze({ dir: 0o700, file: 0o600 });
/** `share: 'group'`: the owner's group too; setgid directories keep new files in that group. */
export const GROUP_MODES: Modes = Object.freeze({ dir: 0o2770, file: 0o660 });

/** The umask can only remove bits: group modes are set explicitly, private ones never need it. */
export const needsChmod = (modes: Modes) => modes !== PRIVATE_MODES;

/**
 * Creates `path` (it must not exist), writes all of `data`, and with `sync` fdatasyncs it.
 * On any failure the file is closed and removed, and the error is rethrown: the fdatasync
 * is never retried (a failed fsync may have dropped the dirty pages).
 */
export async function writeNewFile(path: string, data: Buffer, sync: boolean, modes: Modes): Promise<void> {
  const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, modes.file);
  try {
    if (needsChmod(modes)) fchmodSync(fd, modes.file);
    let offset = 0;
    while (offset < data.length) {
      const length = data.length - offset;
      offset +=
        data.length <= SYNC_IO_MAX_BYTES ? writeSync(fd, data, offset, length) : (await writeAsync(fd, data, offset, length)).bytesWritten;
    }
    if (sync) await fdatasyncAsync(fd);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {}
    await unlink(path).catch(() => {});
    throw error;
  }
  try {
    closeSync(fd);
  } catch (error) {
    await unlink(path).catch(() => {});
    throw error;
  }
}

/** fsync of a directory: makes the creation, rename or removal of its entries durable. */
export async function fsyncDir(path: string): Promise<void> {
  const fd = openSync(path, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * fsyncDir of a bucket of ready/. A bucket that is gone by the time of its fsync was removed by
 * rmdir, which only succeeds on an empty directory (consumers remove old empty buckets): every
 * message renamed or linked into it was already claimed or purged, so there is nothing left in it
 * to make durable (and a ready/ that is gone went with its group). Any other error is a
 * durability failure.
 */
export async function fsyncBucket(path: string): Promise<void> {
  try {
    await fsyncDir(path);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
}

/**
 * fsyncDir on the JS thread, for the one step that must not let other work of this process in
 * between (an envelope's move-out, leases.ts): it holds the event loop for the flush.
 */
export function fsyncDirSync(path: string): void {
  const fd = openSync(path, C.O_RDONLY | C.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates a directory (0700) if it is missing. When this call created it and `sync` is on, the
 * parent is fsynced so that the new entry itself is durable. Returns whether it was created.
 */
export async function ensureDir(path: string, parent: string, sync: boolean, modes: Modes): Promise<boolean> {
  if (!(await makeDir(path, modes))) return false;
  if (sync) await fsyncDir(parent);
  return true;
}

/** mkdir with the spool's mode; false if it exists already. */
export async function makeDir(path: string, modes: Modes): Promise<boolean> {
  try {
    await mkdir(path, { mode: modes.dir });
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw error;
  }
  if (needsChmod(modes)) await chmod(path, modes.dir);
  return true;
}

/**
 * Opens for reading without following a symlink (ELOOP for a symlink). O_NONBLOCK keeps a named
 * pipe planted in the spool from blocking forever; it changes nothing for a regular file.
 * Callers check that what they opened is a regular file.
 */
export const OPEN_NO_FOLLOW = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/** Whether `path` exists (lstat: a symlink counts, it is not followed). */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

/** unlink that treats "already gone" as success (a metadata call: synchronous); returns whether this call removed it. */
export function unlinkIfPresent(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}
