/**
 * The few file-system primitives the protocol is built from. Everything here is async
 * (libuv pool) and follows the rules of notes/spool-research.md §5: loop on short writes,
 * fdatasync before a file becomes visible, fsync a directory after changing its entries,
 * and never follow a symlink inside the spool.
 */
import { constants as C } from 'node:fs';
import { chmod, lstat, mkdir, open, unlink } from 'node:fs/promises';
import { isErrno } from './errors.js';

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
const needsChmod = (modes: Modes) => modes !== PRIVATE_MODES;

/**
 * Creates `path` (it must not exist), writes all of `data`, and with `sync` fdatasyncs it.
 * On any failure the file is closed and removed, and the error is rethrown: the fdatasync
 * is never retried (a failed fsync may have dropped the dirty pages).
 */
export async function writeNewFile(path: string, data: Buffer, sync: boolean, modes: Modes): Promise<void> {
  const handle = await open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, modes.file);
  try {
    if (needsChmod(modes)) await handle.chmod(modes.file);
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await handle.write(data, offset, data.length - offset);
      offset += bytesWritten;
    }
    if (sync) await handle.datasync();
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw error;
  }
  try {
    await handle.close();
  } catch (error) {
    await unlink(path).catch(() => {});
    throw error;
  }
}

/** fsync of a directory: makes the creation, rename or removal of its entries durable. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
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
 * pipe planted in the spool from blocking a libuv thread forever; it changes nothing for a
 * regular file. Callers check that what they opened is a regular file.
 */
export async function openNoFollow(path: string) {
  return open(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
}

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

/** unlink that treats "already gone" as success; returns whether this call removed it. */
export async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}
