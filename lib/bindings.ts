/**
 * A group's topic bindings on disk: one entry per pattern in `groups/<group>/topics/`.
 *
 * One entry per pattern (not one file holding the list) makes bind and unbind a single create
 * or unlink each, so processes binding the same group at once never lose each other's change,
 * and no lock is needed. Entries are made in tmp/ and renamed in, then topics/ is fsynced.
 *
 * An entry's name is '=' + the pattern percent-encoded (encodeURIComponent, and '*' too, which
 * FAT and NTFS refuse in names), readable in `ls` and decoded without a read; a pattern whose
 * encoding is too long for a file name is stored as 'sha256-<hex>' with the pattern as the
 * file's content (content-addressed, so it is read once per process).
 *
 * A new group's topics/ is built with the group, in its staging directory, so a publisher
 * that sees a group sees its bindings. A group without topics/ (made before bindings existed)
 * receives every message, as '#' does.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, makeDir, writeNewFile } from './durable-fs.js';
import { isErrno, NOT_WRITABLE_CODES } from './errors.js';
import type { GroupPaths, Spool } from './layout.js';

/** The pattern every group without `topics` is bound to: every message, with a topic or not. */
export const MATCH_ALL = '#';

const ENCODED = '=';
const HASHED = 'sha256-';
/** File names are at most 255 bytes; leave room for nothing else. */
const MAX_ENCODED_NAME = 240;

/** The file name of a pattern's entry. */
export function entryName(pattern: string): string {
  const encoded = ENCODED + encodeURIComponent(pattern).replaceAll('*', '%2A');
  if (encoded.length <= MAX_ENCODED_NAME) return encoded;
  return HASHED + createHash('sha256').update(pattern).digest('hex');
}

/** Patterns of hashed entries, by entry name: the name is a hash of the content, so never stale. */
const hashedPatterns = new Map<string, string>();

/**
 * The patterns a group is bound to, or null when it has no topics/ directory (it receives
 * every message). Entries that are not patterns (a stray file) are ignored.
 */
export async function readPatterns(group: GroupPaths): Promise<string[] | null> {
  let names: string[];
  try {
    names = await readdir(group.topics);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return (await groupExists(group)) ? null : [];
    throw error;
  }
  const patterns: string[] = [];
  for (const name of names) {
    if (name.startsWith(ENCODED)) {
      try {
        patterns.push(decodeURIComponent(name.slice(ENCODED.length)));
      } catch {
        // not an entry this module wrote
      }
    } else if (name.startsWith(HASHED)) {
      let pattern = hashedPatterns.get(name);
      if (pattern === undefined) {
        try {
          pattern = await readFile(join(group.topics, name), 'utf8');
        } catch (error) {
          if (isErrno(error, 'ENOENT')) continue; // unbound meanwhile
          throw error;
        }
        if (entryName(pattern) !== name) continue; // damaged: not the pattern its name hashes
        hashedPatterns.set(name, pattern);
      }
      patterns.push(pattern);
    }
  }
  return patterns.sort();
}

async function groupExists(group: GroupPaths): Promise<boolean> {
  try {
    await readdir(group.root);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return false;
    throw error;
  }
}

/** Writes the entries of `patterns` into `dir` (a staging directory or a group's topics/). */
export async function writeEntries(spool: Spool, dir: string, patterns: Iterable<string>, sync: boolean): Promise<void> {
  for (const pattern of patterns) {
    const tmp = join(spool.tmp, `topic-${randomBytes(8).toString('hex')}`);
    await writeNewFile(tmp, Buffer.from(pattern, 'utf8'), sync, spool.modes);
    try {
      await rename(tmp, join(dir, entryName(pattern))); // an existing entry is replaced: same content
    } catch (error) {
      await unlink(tmp).catch(() => {});
      throw error;
    }
  }
}

/**
 * Makes the group's bindings `add` plus what it had, minus `remove` (both validated by the
 * caller), durably. Additions come first: a group being rebound briefly has the union of the
 * two sets, never less than either.
 */
export async function changePatterns(
  spool: Spool,
  group: GroupPaths,
  change: { add?: readonly string[]; remove?: readonly string[] },
  sync: boolean,
): Promise<void> {
  await ensureTopicsDir(spool, group, sync);
  const add = change.add ?? [];
  const remove = (change.remove ?? []).filter((p) => !add.includes(p));
  await writeEntries(spool, group.topics, add, sync);
  for (const pattern of remove) {
    await unlink(join(group.topics, entryName(pattern))).catch((error) => {
      if (!isErrno(error, 'ENOENT')) throw error;
    });
  }
  if (sync && (add.length > 0 || remove.length > 0)) await fsyncDir(group.topics);
  if (add.length > 0 || remove.length > 0) await spool.routesChanged();
}

/**
 * A group made before bindings existed has no topics/ and receives everything: give it one
 * holding '#' (same meaning), made whole in tmp/ and renamed in, before changing it.
 */
async function ensureTopicsDir(spool: Spool, group: GroupPaths, sync: boolean): Promise<void> {
  if ((await readPatterns(group)) !== null) return;
  const staging = join(spool.tmp, `topics-${randomBytes(6).toString('hex')}`);
  await makeDir(staging, spool.modes);
  await writeEntries(spool, staging, [MATCH_ALL], sync);
  if (sync) await fsyncDir(staging);
  try {
    await rename(staging, group.topics);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (!isErrno(error, 'EEXIST', 'ENOTEMPTY')) throw error; // made by another process meanwhile
  }
  if (sync) await fsyncDir(group.root);
}

/** Makes the group's bindings exactly `patterns` (validated by the caller), durably. */
export async function setPatterns(spool: Spool, group: GroupPaths, patterns: readonly string[], sync: boolean): Promise<void> {
  const current = (await readPatterns(group)) ?? [MATCH_ALL];
  const add = patterns.filter((p) => !current.includes(p));
  const remove = current.filter((p) => !patterns.includes(p));
  if (add.length > 0 || remove.length > 0) {
    await changePatterns(spool, group, { add, remove }, sync);
    return;
  }
  // Already as asked: maybe by a bind elsewhere that has not yet said the routes changed, and
  // publishers cache bindings while groups/ lists the same. Say it, so a push made after this
  // resolves is routed by them (routing-coarse.spec). Best effort: a consumer that may not write
  // groups/ leaves it to the bind's own process, or to the cache's 1 s TTL.
  await spool.routesChanged().catch((error) => {
    if (!isErrno(error, ...NOT_WRITABLE_CODES)) throw error;
  });
}
