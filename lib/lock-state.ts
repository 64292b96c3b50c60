/**
 * The on-disk state of a named lock and its transitions: the same rename-as-compare-and-swap
 * protocol as message leases (leases.ts), so that exactly one process wins every change.
 *
 *   <spool>/locks/<name>/<token:12 hex>-<deadline:12 hex>      exactly one entry; deadline 0 = free
 *
 *   create  tmp/lock-<random>/<0>-<0> → locks/<name>    (EEXIST/ENOTEMPTY: another process made it)
 *   take    <t>-<d> → <t+1>-<now+staleMs>, if d = 0 or d <= now; then fsync   (ENOENT: another won)
 *   renew   <t>-<d> → <t>-<now+staleMs>                                       (ENOENT: the lock was lost)
 *   free    <t>-<d> → <t>-<0>                                                 (ENOENT: the lock was lost)
 *
 * Every transition renames one exact source name, and the token in a name only ever grows, so:
 * two contenders that both saw the same expired entry cannot both take it (the second rename
 * finds no source); a contender that decided "expired" long ago can never take the fresh entry
 * that replaced it (proper-lockfile #121: its takeover removes whatever lock is there now); and
 * a holder whose entry was taken can never renew or free the new holder's entry, whose name
 * differs in its token. The token is the fencing token: strictly increasing per name.
 *
 * Durability: `take` fsyncs the lock directory (and locks/ and the spool root, whose entries
 * lead to it) before the token is handed out, so a token once returned survives power loss and
 * every later take counts up from it. Creation, renew and free are not synced: a lock directory
 * lost in a power loss was never taken (taking syncs it), and a renewal or release lost in one
 * only leaves the entry with an older deadline of the same token, which expires.
 *
 * Safety never rests on a listing: one that races a rename may show the old and the new name
 * (the highest token is the state) or, in theory, neither (then the create below fails with
 * ENOTEMPTY and the listing is repeated), and a transition from a stale listing fails with ENOENT.
 */
import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, makeDir, writeNewFile } from './durable-fs.js';
import { isErrno, SpoolFormatError } from './errors.js';
import type { Spool } from './layout.js';

export const LOCKS_DIR = 'locks';
/** The deadline of a free lock. */
export const FREE = 0;

const ENTRY = /^([0-9a-f]{12})-([0-9a-f]{12})$/;
const MAX_FIELD = 16 ** 12 - 1;

export interface LockEntry {
  readonly name: string;
  /** The fencing token of the latest take (0: never taken). */
  readonly token: number;
  /** Wall-clock ms until which the holder owns it; FREE (0) when released. */
  readonly deadline: number;
}

const hex = (n: number): string => n.toString(16).padStart(12, '0');

export function lockEntry(token: number, deadline: number): LockEntry {
  if (!Number.isInteger(token) || token < 0 || token > MAX_FIELD || !Number.isInteger(deadline) || deadline < 0 || deadline > MAX_FIELD) {
    throw new RangeError(`lock token ${token} or deadline ${deadline} out of range`);
  }
  return { name: `${hex(token)}-${hex(deadline)}`, token, deadline };
}

export function parseLockEntry(name: string): LockEntry | null {
  const m = ENTRY.exec(name);
  if (!m) return null;
  return { name, token: Number.parseInt(m[1] as string, 16), deadline: Number.parseInt(m[2] as string, 16) };
}

/** Whether `entry` may be taken at `now`: released, or its holder stopped renewing it in time. */
export function isTakeable(entry: LockEntry, now: number): boolean {
  return entry.deadline === FREE || entry.deadline <= now;
}

export class LockState {
  /** `<spool>/locks/<name>`: holds the one entry. */
  readonly dir: string;
  readonly #spool: Spool;
  readonly #locks: string;

  constructor(
    spool: Spool,
    readonly name: string,
  ) {
    this.#spool = spool;
    this.#locks = join(spool.root, LOCKS_DIR);
    this.dir = join(this.#locks, name);
  }

  /**
   * The current entry; creates the lock on first use. Names that do not parse (a stray file
   * left by hand) are ignored; if several entries parse (only by tampering), the highest token
   * is the state, so tokens keep growing.
   */
  async read(): Promise<LockEntry> {
    for (;;) {
      let names: string[];
      try {
        names = await readdir(this.dir);
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
        names = [];
      }
      let current: LockEntry | null = null;
      for (const name of names) {
        const entry = parseLockEntry(name);
        if (entry && (!current || entry.token > current.token || (entry.token === current.token && entry.deadline > current.deadline))) {
          current = entry;
        }
      }
      if (current) return current;
      if (names.length > 0) {
        throw new SpoolFormatError(
          `The lock directory ${this.dir} holds no lock entry, only ${names.map((n) => JSON.stringify(n)).join(', ')}; it was changed by hand. Remove the directory to reset the lock (its tokens restart from 1)`,
        );
      }
      await this.#create();
    }
  }

  /**
   * Takes `seen` (which the caller found takeable at `now`) with a new token and a deadline of
   * `now + staleMs`, and makes the new token durable. Null when another process changed the
   * entry first: it won, or the holder renewed in time.
   */
  async take(seen: LockEntry, staleMs: number, now = Date.now()): Promise<LockEntry | null> {
    const next = lockEntry(seen.token + 1, now + staleMs);
    try {
      await rename(this.#path(seen), this.#path(next));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return null;
      throw error;
    }
    try {
      await Promise.all([fsyncDir(this.dir), fsyncDir(this.#locks), fsyncDir(this.#spool.root)]);
    } catch (error) {
      // Never retry a failed fsync: the token may not be durable, so it is not handed out.
      // Freeing it keeps others from waiting staleMs; the next take counts up from it anyway.
      await rename(this.#path(next), this.#path(lockEntry(next.token, FREE))).catch(() => {});
      throw error;
    }
    return next;
  }

  /** Moves the deadline of the held `entry` to `now + staleMs`; null when it was lost. */
  async renew(entry: LockEntry, staleMs: number): Promise<LockEntry | null> {
    const next = lockEntry(entry.token, Date.now() + staleMs);
    try {
      await rename(this.#path(entry), this.#path(next));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return null;
      throw error;
    }
    return next;
  }

  /** Releases the held `entry`; false when it was lost (then nothing changed). */
  async free(entry: LockEntry): Promise<boolean> {
    try {
      await rename(this.#path(entry), this.#path(lockEntry(entry.token, FREE)));
      return true;
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return false;
      throw error;
    }
  }

  /** free() for the process's 'exit' event, where nothing asynchronous runs any more. */
  freeSync(entry: LockEntry): void {
    try {
      renameSync(this.#path(entry), this.#path(lockEntry(entry.token, FREE)));
    } catch {
      // lost, or the file system failed: the entry expires after staleMs
    }
  }

  /**
   * Builds the lock directory with its first entry in tmp/ and renames it into place, so that
   * nobody ever sees it empty. The rename replaces an empty directory (a crash lost its entry
   * before any take synced it) and fails on a directory that has an entry.
   */
  async #create(): Promise<void> {
    await makeDir(this.#locks, this.#spool.modes);
    const staging = join(this.#spool.tmp, `lock-${randomBytes(6).toString('hex')}`);
    await makeDir(staging, this.#spool.modes);
    try {
      await writeNewFile(join(staging, lockEntry(0, FREE).name), Buffer.alloc(0), false, this.#spool.modes);
      await rename(staging, this.dir);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      if (!isErrno(error, 'EEXIST', 'ENOTEMPTY')) throw error;
    }
  }

  #path(entry: LockEntry): string {
    return join(this.dir, entry.name);
  }
}
