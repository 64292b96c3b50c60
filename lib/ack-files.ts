/**
 * The acks of an envelope's records, one byte each in a small file of the lease, so that an ack
 * costs a 1-byte write instead of a rename of the lease's name (which held the settled bits
 * alone until 2026-11-28). An ack of record i that leaves records unsettled:
 *
 *   lstat   groups/<group>/leased/<the lease's name>     (ENOENT: the lease was lost)
 *   pwrite  groups/<group>/.acks-<token>   byte i := 1   (opened once per lease, at its first such ack)
 *
 * The lstat is the fence the rename was, and it comes first, so an ack of a lost lease rejects
 * with ELEASE_LOST having changed nothing, as before. A reaper takes a lease only once its
 * deadline has passed, by renaming it, and reads this file only after that rename (Leases
 * #split). So an ack made in time always counts. An ack made at its lease's deadline can find
 * the name, and write its byte after the reaper has read the file: it resolves, and the record
 * is delivered again all the same, as at-least-once allows for work that outlives its lease.
 * The last ack still unlinks the lease (a compare-and-swap, as before). Like every consumer step,
 * no fsync: a power loss forgets acks, and those messages come back.
 *
 * The settled records of a leased envelope are the bits in its name (its claim, and each
 * move-out, which renames it) together with the bytes of this file. Only a reaper needs the file:
 * its holder keeps its own acks in memory, and writes them into a name at once whenever it
 * renames the lease (extend, release, move-out). The file is named by the lease's token, which
 * every name made from the lease keeps, a reaper's included; it is hidden, so every listing of
 * the group ignores it. Whoever ends the lease removes it, after the lease's name is gone: a
 * crash in between leaves a stray file of a few bytes, never a lost ack (fsck removes strays).
 *
 * Measured (bench/README.md, results of 2026-11-28): a drain of envelopes of 100, one process,
 * 16.0–16.4 µs a pop + ack with a rename per ack, 10.6–11.1 µs with this file.
 */
import { constants as C, closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Modes } from './durable-fs.js';
import { recordBit } from './names.js';

const PREFIX = '.acks-';
const ACKED = Buffer.from([1]);
const OPEN_FLAGS = C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW;

/** What AckFiles needs of a lease: its token, and the descriptor of its file once opened. */
export interface AckedLease {
  readonly token: string;
  acks?: number;
}

/** The name of the ack file of the lease with `token`, in its group's directory. */
export function ackFileName(token: string): string {
  return PREFIX + token;
}

/** The token of an ack file's name, or null for any other name. */
export function ackFileToken(name: string): string | null {
  return name.startsWith(PREFIX) && name.length > PREFIX.length ? name.slice(PREFIX.length) : null;
}

/**
 * The records acked in the file of the lease with `token` in the group at `groupRoot`, as settled
 * bits. Every reader of a leased envelope's settled records adds these to its name's: the reaper
 * (Leases #split), stats() and fsck. 0n when there is no file, and when it cannot be read (not
 * a file, say): its acked records are then delivered again, which at-least-once allows, where a
 * throw would stop every reap of the lease, and a bad file must never stop the queue.
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

/** The ack files of one group. */
export class AckFiles {
  /** Closes the descriptor of a lease that was dropped unsettled (its message never acked or nacked). */
  readonly #unreachable = new FinalizationRegistry<number>((fd) => {
    try {
      closeSync(fd);
    } catch {}
  });

  constructor(
    private readonly groupRoot: string,
    private readonly modes: Modes,
  ) {}

  /**
   * Writes the ack of record `index` into the file of `lease`, opening it (or creating it) at
   * the first. Throws what open or write threw: ENOENT when the group is gone, anything else
   * (ENOSPC, EMFILE) for the caller to settle the record the old way, in the lease's name.
   */
  write(lease: AckedLease, index: number): void {
    if (lease.acks === undefined) {
      lease.acks = openSync(this.#path(lease.token), OPEN_FLAGS, this.modes.file);
      this.#unreachable.register(lease, lease.acks, lease);
    }
    writeSync(lease.acks, ACKED, 0, 1, index);
  }

  /** The records acked in the file of the lease with `token`, as settled bits (0n: no file). */
  read(token: string, count: number): bigint {
    return readAcks(this.groupRoot, token, count);
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
   * Closes and removes the file of `lease`: call once every name of the lease is gone. The lease
   * has ended by then, so a failure here is left for fsck (a stray file), not thrown.
   */
  remove(lease: AckedLease): void {
    this.close(lease);
    try {
      unlinkSync(this.#path(lease.token));
    } catch {}
  }

  #path(token: string): string {
    return join(this.groupRoot, ackFileName(token));
  }
}
