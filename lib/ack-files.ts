/**
 * The acks of an envelope's records, in a small file of the lease, so that an ack costs a short
 * write instead of a rename of the lease's name (which held the settled bits alone until
 * 2026-11-27). An ack of record i that leaves records unsettled:
 *
 *   lstat   groups/<group>/leased/<the lease's name>             (ENOENT: the lease was lost)
 *   pwrite  groups/<group>/.acks-<token>   at 8 × i: the token's 8 bytes   (the file opened once per lease)
 *
 * The lstat is the fence the rename was, and it comes first, so an ack of a lost lease rejects
 * with ELEASE_LOST having changed nothing, as before. A reaper takes a lease only once its
 * deadline has passed (by a rename), and reads this file after that (Leases #split), so an ack
 * resolved before the deadline always counts. What is new: an ack that races a reaper's takeover
 * of its expired lease can find the name just before the rename and write after the reaper read
 * the file. It resolves, and the message is delivered again all the same, as at-least-once allows
 * for work that outlived its lease (a rename could not resolve then). The last ack still unlinks
 * the lease, a compare-and-swap as before. Like every consumer step, no fsync.
 *
 * A record counts as acked only where its 8 bytes are the lease's token: whatever else a block of
 * the file holds (another lease's acks, from a spare below, or what a power loss leaves in a file
 * without a journal: old or foreign data, zeros) is ignored, so a crash can forget acks, and their
 * messages come back, but never invent one. A torn write is forgotten the same way.
 *
 * The settled records of a leased envelope are the bits in its name together with this file. Its
 * holder keeps its own acks in memory too, and writes them into the name whenever it renames the
 * lease (extend, release, a nack's move-out). The file is named by the lease's token, which every
 * name made from the lease keeps, a reaper's included, and it is hidden: listings of the group
 * skip it. The file of a lease that ended is kept open as a spare (renamed to `.acks-spare-<hex>`)
 * and becomes the next lease's by a rename: on this ext4 without a journal a file creation after
 * deletions costs up to a millisecond, and a drain that made and deleted a file per part of 32
 * ran 1.26× slower than with a rename per ack (bench/README.md, results of 2026-11-27 from 20:24).
 * A spare needs no emptying: its bytes are another token's. Spares are removed when the consumer
 * closes; a crash leaves them, and stray files of leases, to fsck (after an hour).
 */
import { constants as C, closeSync, fchmodSync, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type Modes, needsChmod, OPEN_NO_FOLLOW } from './durable-fs.js';
import { isErrno } from './errors.js';
import { MAX_ENVELOPE_RECORDS, newToken, recordBit } from './names.js';

const PREFIX = '.acks-';
/** A spare's name: `.acks-spare-<random>`, never a lease's (tokens are hex). */
const SPARE = 'spare-';
/** The bytes of one record's ack: the lease's token (16 hex digits, 8 bytes). */
const STAMP_BYTES = 8;
const TOKEN = /^[0-9a-f]{16}$/;
/** Spares kept per group and process: a consumer holds a part or two at a time. */
const MAX_SPARES = 4;
/** Spare names: random once per process, then counted (randomBytes per name was 2.8 % of a drain). */
const SPARE_PREFIX = newToken();
let sparesMade = 0;
/** Non-blocking: a FIFO planted at the name fails (ENXIO) or is skipped instead of hanging the caller. */
const WRITE_FLAGS = C.O_WRONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/** What AckFiles needs of a lease: its token, and the descriptor of its file and its ack bytes once opened. */
export interface AckedLease {
  readonly token: string;
  acks?: number;
  /** The token's 8 bytes, made once per lease (a hex decode per ack was 3.5 % of a drain). */
  ackStamp?: Buffer;
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
 * (Leases #split), stats() and fsck. 0n when there is no file, and when it is not a regular file
 * or cannot be read: its acked messages are then delivered again, as at-least-once allows, where
 * a throw would stop every reap of the lease, and with it the consumers' pops (a bad file must
 * never stop the queue). spoolq makes the file readable to the spool's users (#make).
 */
export function readAcks(groupRoot: string, token: string, count: number): bigint {
  if (!TOKEN.test(token)) return 0n;
  const stamp = Buffer.from(token, 'hex');
  const bytes = Buffer.alloc(Math.min(count, MAX_ENVELOPE_RECORDS) * STAMP_BYTES);
  let length: number;
  try {
    const fd = checked(openSync(join(groupRoot, ackFileName(token)), OPEN_NO_FOLLOW));
    try {
      length = readSync(fd, bytes, 0, bytes.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0n;
  }
  let settled = 0n;
  for (let i = 0; (i + 1) * STAMP_BYTES <= length; i++) {
    if (bytes.compare(stamp, 0, STAMP_BYTES, i * STAMP_BYTES, (i + 1) * STAMP_BYTES) === 0) settled |= recordBit(i);
  }
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
  /** Set by closeSpares: from then on the file of a lease that ends is removed, not kept. */
  #closed = false;

  constructor(
    private readonly groupRoot: string,
    private readonly modes: Modes,
  ) {}

  /**
   * Writes the ack of record `index` into the file of `lease`, making it at the first. Throws what
   * open or write threw: ENOENT when the group is gone, anything else (ENOSPC, EMFILE, not a
   * regular file there) for the caller to settle the record the old way, in the lease's name.
   */
  write(lease: AckedLease, index: number): void {
    if (lease.acks === undefined) {
      if (!TOKEN.test(lease.token)) throw Object.assign(new Error(`not a token: ${lease.token}`), { code: 'EINVAL' });
      lease.acks = this.#open(this.#path(lease.token));
      this.#unreachable.register(lease, lease.acks, lease);
    }
    lease.ackStamp ??= Buffer.from(lease.token, 'hex');
    writeSync(lease.acks, lease.ackStamp, 0, STAMP_BYTES, index * STAMP_BYTES);
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
   * The lease has ended, every name of it gone: its file, if this process opened one, becomes a
   * spare (renamed out of the lease's name), or is removed. A failure here is left for fsck (a
   * stray file), not thrown: the lease is settled either way.
   */
  done(lease: AckedLease): void {
    const fd = lease.acks;
    if (fd === undefined) return;
    this.#unreachable.unregister(lease);
    lease.acks = undefined;
    const path = this.#path(lease.token);
    if (!this.#closed && this.#spares.length < MAX_SPARES) {
      const name = ackFileName(`${SPARE}${SPARE_PREFIX}-${++sparesMade}`);
      try {
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

  /** Closes and removes the spares, and keeps none from now on: the consumer is closing. */
  closeSpares(): void {
    this.#closed = true;
    for (const { fd, name } of this.#spares.splice(0)) {
      try {
        closeSync(fd);
      } catch {}
      try {
        unlinkSync(join(this.groupRoot, name));
      } catch {}
    }
  }

  /**
   * A descriptor of the file at `path`: the file itself if it is there already, else a spare
   * renamed there, else a new file. The file can be there with no descriptor open when an ENOENT
   * was taken for a lost lease (Leases #lost closes it) while the lease held on: a spare renamed
   * over it would wipe its acks. One failing open per lease buys that.
   */
  #open(path: string): number {
    try {
      return checked(openSync(path, WRITE_FLAGS));
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
    while (this.#spares.length > 0) {
      const spare = this.#spares.pop() as { fd: number; name: string };
      try {
        renameSync(join(this.groupRoot, spare.name), path);
        return spare.fd;
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) {
          this.#spares.push(spare); // the spare is fine; the name is not (a directory there, say)
          throw error;
        }
        // Removed meanwhile (by fsck, after an hour unused), or the group is gone: the next one.
        try {
          closeSync(spare.fd);
        } catch {}
      }
    }
    const fd = checked(openSync(path, WRITE_FLAGS | C.O_CREAT, this.modes.file));
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

/** `fd` if it is a regular file; else it is closed and an error thrown. */
function checked(fd: number): number {
  let file: boolean;
  try {
    file = fstatSync(fd).isFile();
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  if (file) return fd;
  closeSync(fd);
  throw Object.assign(new Error('not a regular file'), { code: 'EFTYPE' });
}
