/**
 * Opening a spool that must exist already. Inspecting (peek, fsck, the CLI's stats and dead
 * letters) never creates a spool: a mistyped path would otherwise become an empty spool and be
 * reported as empty.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GroupNotFoundError, SpoolFormatError, SpoolPathError, SpoolqError } from './errors.js';
import { FORMAT_FILE, type GroupPaths, openSpool, type Spool } from './layout.js';

/**
 * Resolves to the absolute path of the spool at `dir`; rejects with ESPOOL_PATH when it is
 * missing or not a directory, ESPOOL_FORMAT when it has no format file.
 */
export async function checkSpoolExists(dir: string): Promise<string> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new SpoolPathError(`The spool path must be a non-empty string, got ${String(dir)}`);
  }
  const root = resolve(dir);
  try {
    const info = await stat(root);
    if (!info.isDirectory()) {
      throw new SpoolPathError(`The spool path ${root} is not a directory; pass the directory of a spool`);
    }
  } catch (error) {
    if (error instanceof SpoolqError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SpoolPathError(`There is no spool at ${root}; check the path (pushing to it or consuming from it creates one)`);
    }
    throw new SpoolPathError(`Cannot read the spool at ${root}: ${(error as Error).message}`, { cause: error });
  }
  try {
    await stat(join(root, FORMAT_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SpoolPathError(`Cannot read ${join(root, FORMAT_FILE)}: ${(error as Error).message}`, { cause: error });
    }
    throw new SpoolFormatError(`${root} has no ${FORMAT_FILE}, so it is not a spoolq spool; check the path`);
  }
  return root;
}

/** The existing spool at `dir` (format checked; refused if unsafe unless `strictModes` is false). */
export async function openExistingSpool(dir: string, strictModes = true): Promise<Spool> {
  const root = await checkSpoolExists(dir);
  return openSpool(root, false, { share: undefined, strictModes });
}

/** A group of the existing spool at `dir`; EGROUP_NOT_FOUND when it has none of that name. */
export async function openExistingGroup(dir: string, group: string): Promise<{ spool: Spool; paths: GroupPaths }> {
  const spool = await openExistingSpool(dir);
  if (!(await spool.hasGroup(group))) throw new GroupNotFoundError(`There is no group ${group} in the spool at ${spool.root}`);
  return { spool, paths: spool.group(group) };
}
