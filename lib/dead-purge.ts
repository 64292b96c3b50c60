/**
 * purgeDeadLetters(): removes dead letters of a group for good (those with the given ids, or
 * all), with their reasons. Each removal is one unlink of one name: safe while consumers run.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { removeReason } from './dead-letters.js';
import { GroupNotFoundError, isErrno, storageError } from './errors.js';
import { openExistingSpool } from './existing-spool.js';
import { parseReady } from './names.js';
import { checkGroupName, invalid } from './options.js';

export interface PurgeDeadOptions {
  /** @default 'default' */
  group?: string;
  /** Ids as `deadLetters()` lists them (the message id, or the file name of a quarantined file); all when omitted. */
  ids?: readonly string[];
  /** Called as letters are removed: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Removes dead letters of a group of the existing spool at `dir`; resolves to the ids removed. */
export async function purgeDeadLetters(dir: string, options: PurgeDeadOptions = {}): Promise<string[]> {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object', options);
  const group = checkGroupName(options.group ?? 'default');
  const { ids, onProgress } = options;
  if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))) {
    throw invalid('ids', 'an array of dead letter ids', ids);
  }
  const spool = await openExistingSpool(dir);
  if (!(await spool.hasGroup(group))) throw new GroupNotFoundError(`There is no group ${group} in the spool at ${spool.root}`);
  const dead = spool.group(group).dead;
  const wanted = ids ? new Set(ids) : null;
  try {
    const letters = (await readdir(dead))
      .filter((n) => !n.endsWith('.why') && !n.startsWith('.'))
      .map((file) => ({ file, id: parseReady(file)?.id ?? file }))
      .filter((l) => !wanted || wanted.has(l.id) || wanted.has(l.file));
    const removed: string[] = [];
    onProgress?.(0, letters.length);
    for (const [i, letter] of letters.entries()) {
      const path = join(dead, letter.file);
      try {
        await unlink(path);
        removed.push(letter.id);
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error; // requeued or purged by another process meanwhile
      }
      await removeReason(path);
      onProgress?.(i + 1, letters.length);
    }
    return removed;
  } catch (error) {
    throw storageError(error, `purge the dead letters of group ${group}`);
  }
}
