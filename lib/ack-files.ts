/**
 * The acks of an envelope's records, one byte each in a small file of the lease, so that an ack
 * costs a 1-byte write instead of a rename of the lease's name (which held the settled bits
 * alone until 2026-11-27). An ack of record i that leaves records unsettled:
 *
 *   lstat   groups/<group>/leased/<the lease's name>     (ENOENT: the lease was lost)
 *   pwrite  groups/<group>/.acks-<token>   byte i := 1   (opened once per lease, at its first such ack)
 *
 * The lstat is the fence the rename was, and it comes first, so an ack of a lost lease rejects
 * with ELEASE_LOST having changed nothing, as before. A reaper takes a lease only once its
 * deadline has passed (by a rename), and reads this file after that (Leases #split), so an ack
 * resolved before the deadline always counts. What is new: an ack that races a reaper's takeover
 * of its expired lease can find the name just before the rename and write its byte after the
 * reaper read the file. It resolves, and the message is delivered again all the same, as
 * at-least-once allows for work that outlived its lease (a rename could not resolve then). The
 * last ack still unlinks the lease, a compare-and-swap as before. Like every consumer step, no
 * fsync: a power loss forgets acks, and those messages come back.
 *
 * The settled records of a leased envelope are the bits in its name together with the bytes of
 * this file. Its holder keeps its own acks in memory too, and writes them into the name whenever
 * it renames the lease (extend, release, a nack's move-out). The file is named by the lease's
 * token, which every name made from the lease keeps, a reaper's included, and it is hidden:
 * listings of the group skip it. The file of a lease that ended is kept open as a spare (emptied,
 * under a name no lease has), and the next lease's file is a spare renamed: on this ext4 without
 * a journal a file creation after deletions costs up to a millisecond (bench/README.md), and a
 * drain that created and deleted a file per part of 32 ran 1.26× slower than with a rename per
 * ack, and one that renames spares 0.70× (bench/README.md, results of 2026-11-27 from 20:24).
 * Spares are removed when the consumer closes; a crash leaves them, and stray files of leases,
 * to fsck (after an hour).
 */
import { constants as C, closeSync, fchmodSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type Modes, needsChmod } from './durable-fs.js';
import { MAX_ENVELOPE_RECORDS, newToken, recordBit } from './names.js';

const PREFIX = '.acks-';
/** A spare's name: `.acks-spare-<random>`, never a lease's (tokens are hex). */
const SPARE = 'spare-';
const ACKED = Buffer.from([1]);
/** Written over a spare to empty it: one byte per record an envelope can have. */
const NONE_ACKED = Buffer.alloc(MAX_ENVELOPE_RECORDS);
/** Spares kept per group and process: a consumer holds a part or two at a time. */
const MAX_SPARES = 4;

/** What AckFiles needs of a lease: its token, and the descriptor of its file once opened. */
export interface AckedLease {
  readonly token: string;
  acks?: number;
}

/** The name of the ack file of the lease with `token`, in its group's directory. */
export function ackFileName(token: string): string {
  return PREFIX + token;
}

/** What follows `.acks-` in an ack file's name (a token, or a spare's), or null for any other name. */
export function ackFileToken(name: string): string | null {
  return name.startsWith(PREFIX) && name.length > PREFIX.length ? name.slice(PREFIX.length) : null;
}

/**
 * The records acked in the file of the lease with `token` in the group at `groupRoot`, as settled
 * bits. Every reader of a leased envelope's settled records adds these to its name's: the reaper
 * (Leases #split), stats() and fsck. 0n when there is no file, and when it cannot be read (not a
 * file, say: spoolq makes it readable to the spool's users, see #make): its acked messages are
 * then delivered again, as at-least-once allows, where a throw would stop every reap of the
 * lease, and with it the consumers' pops; a bad file must never stop the queue.
 */
export function readAcks(groupRoot: string, token: string, count: number): bigint {
  const bytes = Buffer.alloc(count);
  let length: number;
  try {
    const fd = openSync(join(groupRoot, ackFileName(token)), C.O_RDONLY | C.O_NOFOLLOW);
    try {
      length = readSync(fd, bytes, 0, count, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0n;
  }
  let settled = 0n;
  for (let i = 0; i < length; i++) if (bytes[i] !== 0) settled |= recordBit(i);
  return settled;
}

/** The ack files of one group, for one process: its leases' open files, and its spares. */
export class AckFiles {
  /** Closes the descriptor of a lease that was dropped unsettled (its message never acked or nacked). */
  readonly #unreachable = new FinalizationRegistry<number>((fd) => {
    try {
      closeSync(fd);
    } catch {}
  });
  readonly #spares: Array<{ fd: number; name: string }> = [];

  constructor(
    private readonly groupRoot: string,
    private readonly modes: Modes,
  ) {}

  /**
   * Writes the ack of record `index` into the file of `lease`, making it at the first (a spare
   * renamed, or a new file). Throws what open or write threw: ENOENT when the group is gone,
   * anything else (ENOSPC, EMFILE) for the caller to settle the record the old way, in its name.
   */
  write(lease: AckedLease, index: number): void {
    if (lease.acks === undefined) {
      lease.acks = this.#make(this.#path(lease.token));
      this.#unreachable.register(lease, lease.acks, lease);
    }
    writeSync(lease.acks, ACKED, 0, 1, index);
  }

  /** Closes the descriptor of `lease`, if it has one: the lease is lost, and its file is its reaper's now. */
  close(lease: AckedLease): void {
    if (lease.acks === undefined) return;
    this.#unreachable.unregister(lease);
    const fd = lease.acks;
    lease.acks = undefined;
    try {
      closeSync(fd);
    } catch {}
  }

  /**
   * The lease has ended, every name of it gone: its file, if this process made one, becomes a
   * spare (emptied first, then renamed out of the lease's name), or is removed. A failure here
   * is left for fsck (a stray file), not thrown: the lease is settled either way.
   */
  done(lease: AckedLease): void {
    const fd = lease.acks;
    if (fd === undefined) return;
    this.#unreachable.unregister(lease);
    lease.acks = undefined;
    const path = this.#path(lease.token);
    if (this.#spares.length < MAX_SPARES) {
      const name = ackFileName(SPARE + newToken());
      try {
        // Emptied before the rename, so a file under a lease's name never holds another's acks;
        // by a write of zeros rather than ftruncate, which frees its block (3.6 % of a drain).
        writeSync(fd, NONE_ACKED, 0, NONE_ACKED.length, 0);
        renameSync(path, join(this.groupRoot, name));
        this.#spares.push({ fd, name });
        return;
      } catch {}
    }
    try {
      closeSync(fd);
    } catch {}
    try {
      unlinkSync(path);
    } catch {}
  }

  /** Removes the file of the lease with `token`, whoever made it: a reaper's split is done with it. */
  remove(token: string): void {
    try {
      unlinkSync(this.#path(token));
    } catch {}
  }

  /** Closes and removes the spares: the consumer is closing. */
  closeSpares(): void {
    for (const { fd, name } of this.#spares.splice(0)) {
      try {
        closeSync(fd);
      } catch {}
      try {
        unlinkSync(join(this.groupRoot, name));
      } catch {}
    }
  }

  /** A descriptor of an empty file at `path`: a spare renamed there, or a new file. */
  #make(path: string): number {
    for (let spare = this.#spares.pop(); spare !== undefined; spare = this.#spares.pop()) {
      try {
        renameSync(join(this.groupRoot, spare.name), path);
        return spare.fd;
      } catch {
        // Removed meanwhile (fsck, after an hour unused), or the group is gone: try the next.
        try {
          closeSync(spare.fd);
        } catch {}
      }
    }
    const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW, this.modes.file);
    try {
      if (needsChmod(this.modes)) fchmodSync(fd, this.modes.file); // the umask can only remove bits
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return fd;
  }

  #path(token: string): string {
    return join(this.groupRoot, ackFileName(token));
  }
}
