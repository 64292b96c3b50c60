/**
 * purgeDeadLetters(): removes dead letters of a group for good (those with the given ids, or
 * all), with their reasons. Each removal is of one name (a quarantined directory with its
 * content; a symbolic link is removed, never followed): safe while consumers run.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeReason } from './dead-letters.js';
import { ioHint, isErrno, StorageError, storageError } from './errors.js';
import { openExistingGroup } from './existing-spool.js';
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

/**
 * Removes dead letters of a group of the existing spool at `dir`; resolves to the ids removed
 * (as given: an id, or a file name). A letter that cannot be removed does not stop the others:
 * the error, thrown at the end, says how many were removed and which failed.
 */
export async function purgeDeadLetters(dir: string, options: PurgeDeadOptions = {}): Promise<string[]> {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object', options);
  const group = checkGroupName(options.group ?? 'default');
  const { ids, onProgress } = options;
  if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))) {
    throw invalid('ids', 'an array of dead letter ids', ids);
  }
  const dead = (await openExistingGroup(dir, group)).paths.dead;
  const wanted = ids ? new Set(ids) : null;
  try {
    const letters = (await readdir(dead))
      .filter((n) => !n.endsWith('.why') && !n.startsWith('.'))
      .map((file) => ({ file, id: parseReady(file)?.id ?? file }))
      .filter((l) => !wanted || wanted.has(l.id) || wanted.has(l.file));
    const removed: string[] = [];
    const failed: Array<{ file: string; error: unknown }> = [];
    onProgress?.(0, letters.length);
    for (const [i, letter] of letters.entries()) {
      const path = join(dead, letter.file);
      try {
        // Not unlink: fsck and claims quarantine directories too (EISDIR).
        await rm(path, { recursive: true });
        removed.push(wanted && !wanted.has(letter.id) ? letter.file : letter.id);
        await removeReason(path);
      } catch (error) {
        // ENOENT: requeued or purged by another process meanwhile.
        if (!isErrno(error, 'ENOENT')) failed.push({ file: letter.file, error });
      }
      onProgress?.(i + 1, letters.length);
    }
    if (failed.length > 0) {
      const first = failed[0] as (typeof failed)[number];
      const code = (first.error as NodeJS.ErrnoException).code ?? 'error';
      throw new StorageError(
        `Cannot purge ${failed.length} dead letter(s) of group ${group} (${removed.length} removed): ${code} on ${join(dead, first.file)} (${(first.error as Error).message}); ${ioHint(code)}`,
        { cause: first.error },
      );
    }
    return removed;
  } catch (error) {
    throw storageError(error, `purge the dead letters of group ${group}`);
  }
}
