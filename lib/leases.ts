/**
 * The lease protocol of one group. Every state change is one rename or unlink of one exact
 * name, so it is a compare-and-swap that exactly one process wins:
 *
 *   claim   ready/<b>/<name>        → leased/<deadline>-<name>~<token>   (ENOENT: someone else won)
 *   extend  leased/<d>-<name>~<tok> → leased/<d'>-<name>~<tok>           (ENOENT: lease lost)
 *   ack     unlink leased/<d>-<name>~<tok>                               (ENOENT: lease lost)
 *   nack    leased/… → ready/<b'>/<name with visibleAt' and attempt+1>   (or dead/ after maxAttempts)
 *   reap    expired leased/… → ready/ (attempt+1), by any consumer; several reapers are harmless
 *
 * The token makes the leased name unique to one claim: a consumer whose lease was reaped can
 * never ack, extend or nack the redelivered copy (fencing). (A reaper that takes an expired
 * envelope to split it keeps the token, see #split; the deadline in the name still fences.) No
 * fsync here: losing a claim or an ack in a crash only causes a redelivery, which at-least-once
 * allows, where a rename survives a power cut whole (a journal). Without one, a claim's removal
 * from ready/ can reach the disk without its new name in leased/ (another process's fsync of the
 * bucket), and the message is lost: docs/reliability.md, "Not guaranteed". The exception is
 * #moveOut with sync, which must not leave a record in two places.
 *
 * An envelope (several messages in one file) is claimed, extended and reaped whole, by the same
 * renames. Its records are settled one by one: an ack of record i looks that the lease's name
 * is still there and then writes its ack (the lease's token) at record i's place in the lease's
 * ack file (ack-files.ts says why that fences as a rename of the name did), and the ack of the
 * last one unlinks the lease. Its name holds a
 * settled bitmap too, which the claim and every rename of the lease write from the holder's
 * memory: what is settled is the bits of the name together with the bytes of the file. A nack of
 * record i moves that record out into a name of its own (ready/ with attempt+1, or
 * dead/): a link of the same file in which only record i is unsettled (#moveOut). A reaped
 * envelope is split the same way: each record not yet settled comes back under a name of its own
 * (attempt+1, or a dead letter after the last).
 *
 * The renames and unlinks of one message are synchronous calls: each is one metadata change
 * of a few µs in the kernel, and a trip through libuv's thread pool would cost it 50–100 µs
 * of CPU (bench/README.md, results of 2026-11-27). Listings stay asynchronous.
 */
import { existsSync, linkSync, lstatSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AckFiles, readAcks } from './ack-files.js';
import { type DeadCode, moveToDead, removeReason, writeReason } from './dead-letters.js';
import { ensureDir, fsyncBucket, fsyncDir, fsyncDirSync, type Modes, NO_LINK_CODES, unlinkIfPresent, writeNewFile } from './durable-fs.js';
import { isErrno, LeaseLostError, storageError } from './errors.js';
import type { GroupPaths } from './layout.js';
import { CorruptFileError, envelopeParts } from './message-file.js';
import {
  allRecords,
  formatBucket,
  formatLeased,
  formatReady,
  newToken,
  parseLeased,
  parseReady,
  type ReadyName,
  recordBit,
} from './names.js';
import { type ReadRecord, readMessageFile, readRecord, TooLargeFileError } from './read-message.js';
import type { IndexEntry } from './ready-index.js';

export interface Lease {
  /** The current leased name (changes on extend, and on each settled record of an envelope). */
  name: string;
  /** The ready name as claimed: priority, attempt, and for an envelope its record count. */
  readonly ready: ReadyName;
  readonly readyName: string;
  readonly token: string;
  deadline: number;
  /** The records of an envelope settled so far (bit i = record i); 0n for one message. */
  settled: bigint;
  /** The descriptor of the lease's ack file (ack-files.ts), from its first ack written there. */
  acks?: number;
  /** The bytes of an ack in that file: the token's (ack-files.ts). */
  ackStamp?: Buffer;
}

/** A record delivered from a claimed file: the only one of a message file, or one of an envelope's. */
export interface ClaimedRecord {
  /** Its place in the file (0 for a message file). */
  index: number;
  record: ReadRecord;
}

export interface Claimed {
  lease: Lease;
  /** The records still to deliver, in order (all but the settled ones of an envelope). */
  records: ClaimedRecord[];
}

export interface LeaseSettings {
  leaseMs: number;
  maxAttempts: number;
  maxMessageBytes: number;
  bucketMs: number;
  sync: boolean;
  modes: Modes;
  /** The spool's tmp/: where the nack of an envelope record writes its own file. */
  tmp: string;
}

/** Where records of an envelope written out go: back to ready/ (attempt+1), or to dead/ with a reason. */
type WriteOutTarget = { visibleAt: number; attempt?: number } | { dead: { code: DeadCode; reason: string } };

export class Leases {
  readonly #acks: AckFiles;

  constructor(
    readonly group: GroupPaths,
    private readonly settings: LeaseSettings,
  ) {
    this.#acks = new AckFiles(group.root, settings.modes);
  }

  /**
   * Claims `entry`: 'taken' when another consumer won it (or it is gone), 'quarantined' when
   * the file was bad and moved to the dead letters.
   */
  async claim(entry: IndexEntry, now = Date.now()): Promise<Claimed | 'taken' | 'quarantined'> {
    const ready = parseReady(entry.name);
    if (!ready) return 'taken';
    const token = newToken();
    const deadline = now + this.settings.leaseMs;
    const lease: Lease = {
      name: formatLeased({ deadline, ready: entry.name, token }),
      ready,
      readyName: entry.name,
      token,
      deadline,
      settled: ready.settled,
    };
    try {
      renameSync(join(entry.dir, entry.name), this.#leased(lease.name));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return 'taken';
      throw storageError(error, 'claim a message');
    }
    try {
      const { records } = await readMessageFile(this.#leased(lease.name), this.settings.maxMessageBytes, ready.count, lease.settled);
      const left = records.flatMap((record, index) => (record === null ? [] : [{ index, record }]));
      if (left.length === 0) {
        unlinkSync(this.#leased(lease.name)); // every record was settled: nothing left to deliver
        return 'taken';
      }
      return { lease, records: left };
    } catch (error) {
      // Gone between our rename and the read: the group was deleted, or the lease expired and
      // another consumer reaped it. Either way it is not ours any more.
      if (isErrno(error, 'ENOENT')) return 'taken';
      if (!(error instanceof CorruptFileError)) throw storageError(error, 'read a claimed message'); // it is retried when the lease expires
      try {
        await this.#quarantine(lease, error, { visibleAt: now, attempt: ready.attempt });
      } catch (error) {
        // The lease ran out while it was taken apart, and a reaper took it over: what was moved
        // out stays moved out, the reaper has the rest.
        if (isErrno(error, 'ENOENT')) return 'taken';
        throw error;
      }
      return 'quarantined';
    }
  }

  async extend(lease: Lease, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    const name = this.#leasedName(lease, deadline, lease.settled);
    try {
      renameSync(this.#leased(lease.name), this.#leased(name));
    } catch (error) {
      throw this.#lost(error, 'extend', lease);
    }
    lease.name = name;
    lease.deadline = deadline;
  }

  /** Returns a claimed file (a message or an envelope) to ready/ as it was: same attempt, what was settled kept. */
  async release(lease: Lease): Promise<void> {
    const { ready } = lease;
    try {
      await this.#requeue(this.#leased(lease.name), { ...ready, settled: lease.settled }, ready.visibleAt, ready.attempt);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) this.#acks.close(lease);
      throw error;
    }
    this.#acks.done(lease); // its acks are in the ready name now
  }

  /** The consumer is closing: its spare ack files go (ack-files.ts). */
  closeAckFiles(): void {
    this.#acks.closeSpares();
  }

  /** Acks record `index` (0 for a message file): removes the file once every record is settled. */
  async ack(lease: Lease, index = 0): Promise<void> {
    try {
      this.#settle(lease, index);
    } catch (error) {
      throw this.#lost(error, 'ack', lease);
    }
  }

  /**
   * Marks record `index` settled: an lstat of the lease's name as the fence, then its ack in the
   * lease's ack file (ack-files.ts); where the file cannot be written (no space, say), by renaming
   * the lease to its name with the bit set. Unlinks the lease when it was the last record.
   * ENOENT: the lease is lost, and nothing was written.
   */
  #settle(lease: Lease, index: number): void {
    const settled = lease.settled | recordBit(index);
    if (settled !== allRecords(lease.ready.count)) {
      lstatSync(this.#leased(lease.name));
      try {
        this.#acks.write(lease, index);
        lease.settled = settled;
        return;
      } catch (error) {
        if (isErrno(error, 'ENOENT')) throw error; // the group is gone
      }
    }
    this.#settleInName(lease, index); // the last record (an unlink), or the file could not be written
  }

  /**
   * Marks record `index` settled by renaming the lease to its name with the bit set (or unlinks
   * it when it was the last): a compare-and-swap, which fails with ENOENT if the lease was lost.
   */
  #settleInName(lease: Lease, index: number): void {
    const settled = lease.settled | recordBit(index);
    if (settled === allRecords(lease.ready.count)) {
      unlinkSync(this.#leased(lease.name));
      lease.settled = settled;
      this.#acks.done(lease);
      return;
    }
    const name = this.#leasedName(lease, lease.deadline, settled);
    renameSync(this.#leased(lease.name), this.#leased(name));
    lease.name = name;
    lease.settled = settled;
  }

  /**
   * Returns a message to ready/ with attempt+1, visible after `delayMs`; after the last attempt
   * it becomes a dead letter. A record of an envelope is first written out as a message of its
   * own, then settled in the envelope.
   */
  async retry(lease: Lease, claimed: ClaimedRecord, delayMs: number, reason: string): Promise<void> {
    const visibleAt = Date.now() + delayMs;
    const last = lease.ready.attempt >= this.settings.maxAttempts;
    const why = {
      code: 'max-attempts' as const,
      reason: `failed ${lease.ready.attempt} of ${this.settings.maxAttempts} attempts: ${reason}`,
    };
    if (lease.ready.count > 1) {
      try {
        await this.#takeOut(lease, claimed.index, claimed.record, last ? { dead: why } : { visibleAt });
      } catch (error) {
        throw this.#lost(error, 'nack', lease);
      }
      if (lease.settled === allRecords(lease.ready.count)) this.#acks.done(lease); // its last record: the lease is gone
      return;
    }
    const from = this.#leased(lease.name);
    if (last) {
      const moved = await moveToDead(from, this.group.dead, lease.readyName, why, this.settings.modes);
      if (!moved) throw this.#lost(Object.assign(new Error('gone'), { code: 'ENOENT' }), 'nack');
      return;
    }
    try {
      await this.#requeue(from, lease.ready, visibleAt);
    } catch (error) {
      throw this.#lost(error, 'nack');
    }
  }

  /**
   * Takes record `index` (`record`) out of the envelope that `lease` holds into a name of its own:
   * by a link (#moveOut), or by a copy where the file system has no hard links (#copyOut). A nack
   * and a split do it, and a quarantine for each good record. Throws ENOENT when the lease is gone.
   */
  async #takeOut(lease: Lease, index: number, record: ReadRecord, to: WriteOutTarget): Promise<void> {
    try {
      await this.#moveOut(lease, index, record.attributes.id, to);
    } catch (error) {
      if (!(error instanceof NoLinksError)) throw error;
      await this.#copyOut(lease, index, record, to);
    }
  }

  /**
   * Takes record `index` out of the envelope that `lease` holds into a name of its own, without
   * copying a byte: a link of the same file in which every other record is settled, in ready/
   * (attempt+1, visible at `to.visibleAt`) or in dead/ (same attempt, with the reason). Two calls:
   *
   *   1. link   leased/<lease>  → leased/<lease with bit `index` set>   (the rest, same token)
   *   2. rename leased/<lease>  → ready/<b>/<the record's own name>     (or dead/<…>)
   *
   * The rename alone moves the record: before it the record is only in the envelope, after it
   * only in its own name, so no crash makes it both. (Writing a copy and then setting the bit
   * could: a reaper killed between the two left the record unsettled, and the next one wrote it
   * again, so the same (id, attempt) was delivered twice.) Killed between 1 and 2, leased/ holds
   * two names with one token, the second holding a subset of the first's records: the reaper
   * keeps the first and removes the second (#split). With sync the link is durable before the
   * rename. The calls, and that fsync, are made on the JS thread, so this process's own extend
   * or ack of the lease cannot come in between.
   *
   * Throws ENOENT when the lease is gone, and NoLinksError where the file system has no hard
   * links here; either way nothing changed.
   */
  async #moveOut(lease: Lease, index: number, id: string, to: WriteOutTarget): Promise<void> {
    const { sync, modes } = this.settings;
    const { count } = lease.ready;
    const own = { ...lease.ready, id, settled: allRecords(count) & ~recordBit(index) };
    const dead = 'dead' in to;
    const dir = dead ? this.group.dead : join(this.group.ready, formatBucket(own.priority, to.visibleAt, this.settings.bucketMs));
    const target = join(
      dir,
      dead ? formatReady(own) : formatReady({ ...own, visibleAt: to.visibleAt, attempt: to.attempt ?? own.attempt + 1 }),
    );
    for (let tries = 0; ; tries++) {
      // Read the lease afresh on each try: an ack or a nack of another record may have renamed it meanwhile.
      const from = this.#leased(lease.name);
      const settled = lease.settled | recordBit(index);
      const restName = settled === allRecords(count) ? null : this.#leasedName(lease, lease.deadline, settled);
      if (restName !== null) {
        try {
          linkSync(from, this.#leased(restName));
        } catch (error) {
          if (isErrno(error, ...NO_LINK_CODES)) throw new NoLinksError(error);
          throw error;
        }
      }
      try {
        if (restName !== null && sync) fsyncDirSync(this.group.leased);
        renameSync(from, target);
      } catch (error) {
        if (restName !== null) unlinkIfPresent(this.#leased(restName)); // the lease still holds every record
        // ENOENT with the lease still there: the bucket is missing (a consumer removes old empty ones).
        if (!isErrno(error, 'ENOENT') || dead || !existsSync(from)) throw error;
        if (tries >= 3) throw bucketKeptGoing(error);
        await ensureDir(dir, this.group.ready, sync, modes);
        continue;
      }
      // rename() onto another name of the same file does nothing and succeeds: the record had a
      // name of its own already (which only a duplicate could give it), so the lease's goes.
      if (existsSync(from)) unlinkIfPresent(from);
      if (restName !== null) lease.name = restName;
      lease.settled = settled;
      break;
    }
    if (dead) await writeReason(target, to.dead, modes);
    // The rename's two sides: its target, and its source in leased/, so that after a power loss
    // the record is not in both. A bucket gone by then was emptied by a claim (fsyncBucket).
    if (sync) await Promise.all([dead ? fsyncDir(dir) : fsyncBucket(dir), fsyncDir(this.group.leased)]);
  }

  /**
   * #moveOut where the file system has no hard links: writes the record out as a file of its own
   * (complete and, with sync, durable first), then sets its bit. A process killed between the two
   * leaves the record in both, and the next reaper writes it again: a duplicate with the same
   * attempt, which the links avoid. Throws ENOENT when the lease is gone, having taken back its
   * copy; a bucket removed under the copy is not that (#writeOut makes it again, or, once the copy
   * was claimed from it, has nothing left there to fsync).
   */
  async #copyOut(lease: Lease, index: number, record: ReadRecord, to: WriteOutTarget): Promise<void> {
    lstatSync(this.#leased(lease.name)); // still ours? A lost lease must change nothing, so look before writing
    const copy = await this.#writeOut(lease.ready, record, to);
    try {
      // In its name, not the ack file: only a compare-and-swap makes a copy and a reaper's
      // takeover exclusive (an lstat then a write could both pass them, and the record be out twice).
      this.#settleInName(lease, index);
    } catch (error) {
      // The lease was lost while the copy was written: the envelope will deliver the record
      // again, so take back the copy this call made (a consumer that claimed it meanwhile keeps it).
      try {
        unlinkSync(copy);
        if ('dead' in to) await removeReason(copy); // a dead letter's .why goes with it
      } catch {}
      throw error;
    }
  }

  /**
   * Writes a record of an envelope out as a message file of its own (#copyOut, where there are
   * no hard links): into ready/ visible at `to.visibleAt` with attempt+1 (or `to.attempt`), or
   * into dead/ with a reason (and the same attempt). It is complete (fdatasynced with `sync`)
   * before it is linked in, and its directory is fsynced before this resolves, since the
   * envelope drops the record next. A link never replaces a file: a name that exists already
   * (the same record, written by a redo) is left alone. Resolves to the path it created.
   */
  async #writeOut(envelope: ReadyName, record: ReadRecord, to: WriteOutTarget): Promise<string> {
    const { sync, modes } = this.settings;
    const { id } = record.attributes;
    const tmp = join(this.settings.tmp, `${id}.${newToken()}`);
    await writeNewFile(tmp, record.bytes, sync, modes);
    try {
      const own = { priority: envelope.priority, id, count: 1, settled: 0n };
      let target: string;
      if ('dead' in to) {
        target = placeNew(
          tmp,
          this.group.dead,
          (t) => formatReady({ ...own, attempt: envelope.attempt, visibleAt: t }),
          envelope.visibleAt,
        );
        await writeReason(target, to.dead, modes);
      } else {
        const dir = join(this.group.ready, formatBucket(envelope.priority, to.visibleAt, this.settings.bucketMs));
        const attempt = to.attempt ?? envelope.attempt + 1;
        target = await this.#intoBucket(dir, tmp, () =>
          placeNew(tmp, dir, (t) => formatReady({ ...own, attempt, visibleAt: t }), to.visibleAt),
        );
      }
      if (sync) await ('dead' in to ? fsyncDir : fsyncBucket)(dirname(target)); // a bucket gone by then: see #moveOut
      return target;
    } finally {
      try {
        unlinkSync(tmp);
      } catch {}
    }
  }

  /**
   * Returns every expired lease to ready/ (or dead/ after the last attempt). Resolves to the
   * earliest deadline still pending, or null, so a waiting consumer can time its next reap.
   */
  async reap(now = Date.now()): Promise<{ returned: number; nextDeadline: number | null }> {
    let returned = 0;
    for (let pass = 1; ; pass++) {
      const result = await this.#reapListed(now);
      returned += result.returned;
      // An expired envelope that changed under this pass (its owner, late, moved a record out of
      // it) has a name this listing lacks: look once more, so it does not wait for the next reap.
      if (!result.moved || pass === 2) return { returned, nextDeadline: result.nextDeadline };
    }
  }

  async #reapListed(now: number): Promise<{ returned: number; nextDeadline: number | null; moved: boolean }> {
    let returned = 0;
    let moved = false;
    const names = (await readdir(this.group.leased)).sort();
    const leftovers = leftoverNames(names);
    for (const name of names) {
      if (name.startsWith('.')) continue;
      // Another name with its token holds all its records: never split it on its own. Its
      // holder is split instead, which removes it; if the holder is gone (its owner moved a
      // record out meanwhile), the second listing finds this one alone.
      if (leftovers.has(name)) continue;
      const from = this.#leased(name);
      const leased = parseLeased(name);
      const ready = leased && parseReady(leased.ready);
      if (!leased || !ready) {
        await moveToDead(
          from,
          this.group.dead,
          null,
          {
            code: 'bad-name',
            reason: `not a leased message name: ${JSON.stringify(name)}`,
            originalName: name,
          },
          this.settings.modes,
        );
        continue;
      }
      if (leased.deadline > now) return { returned, nextDeadline: leased.deadline, moved };
      try {
        const why = {
          code: 'lease-expired' as const,
          reason: `the lease of attempt ${ready.attempt} of ${this.settings.maxAttempts} expired (the consumer died or was too slow)`,
        };
        const last = ready.attempt >= this.settings.maxAttempts;
        if (ready.count > 1) await this.#split(from, ready, leased.token, last ? { dead: why } : { visibleAt: now }, now);
        else if (last) await moveToDead(from, this.group.dead, leased.ready, why, this.settings.modes);
        else await this.#requeue(from, ready, now);
        returned++;
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error; // acked, extended or reaped by another meanwhile
        if (ready.count > 1) moved = true;
      }
    }
    return { returned, nextDeadline: null, moved };
  }

  /**
   * An envelope whose lease expired: each record not yet settled gets a name of its own (#moveOut),
   * back in ready/ with attempt+1, or a dead letter after the last attempt. So from then on each
   * is charged for its own failures: a message that kills its consumer (or a handler slower than
   * leaseMs) no longer costs an attempt to the rest of its envelope each time. The envelope is
   * claimed first (a rename, which one reaper wins); if this process dies part-way, the claim
   * expires and another reaper goes on where it stopped.
   *
   * The claim keeps the lease's token (`token`), so that every name ever made from this lease
   * has it: fencing does not need a new one, since the owner acts only on its exact name (the
   * deadline changes), and a leftover link (#moveOut) stays recognisable by its token across
   * reapers. Once the claim is won, the other names with the token are sorted out
   * (#dropLeftovers).
   */
  async #split(from: string, ready: ReadyName, token: string, to: WriteOutTarget, now: number): Promise<void> {
    const readyName = formatReady(ready);
    const deadline = now + this.settings.leaseMs;
    const lease: Lease = {
      name: formatLeased({ deadline, ready: readyName, token }),
      ready,
      readyName,
      token,
      deadline,
      settled: ready.settled,
    };
    renameSync(from, this.#leased(lease.name)); // ENOENT: another reaper or the owner got it first
    // The lease's deadline has passed, so every ack resolved in time is in the file; read
    // after the rename, from which no ack can start (ack-files.ts).
    lease.settled |= readAcks(this.group.root, token, ready.count);
    await this.#takeApart(lease, to); // ENOENT: another reaper took over, and needs the file
    this.#acks.remove(token);
  }

  /** The rest of #split, once its claim is won: every record not settled goes out to a name of its own. */
  async #takeApart(lease: Lease, to: WriteOutTarget): Promise<void> {
    const { ready } = lease;
    this.#dropLeftovers(lease);
    let records: Array<ReadRecord | null>;
    try {
      ({ records } = await readMessageFile(this.#leased(lease.name), this.settings.maxMessageBytes, ready.count, lease.settled));
    } catch (error) {
      if (!(error instanceof CorruptFileError)) throw error;
      await this.#quarantine(lease, error, to);
      return;
    }
    for (const [index, record] of records.entries()) {
      if (record === null || (lease.settled & recordBit(index)) !== 0n) continue;
      try {
        await this.#takeOut(lease, index, record, to);
      } catch (error) {
        if (isErrno(error, 'ENOENT')) throw error; // another reaper took over
        // No room for a link or a copy (ENOSPC), say: return the rest of the envelope whole
        // instead, as one rename does it; a reap must not fail for want of space, or a full disk
        // could not be drained.
        const rest = formatReady({ ...ready, settled: lease.settled });
        if ('dead' in to) await moveToDead(this.#leased(lease.name), this.group.dead, rest, to.dead, this.settings.modes);
        else await this.#requeue(this.#leased(lease.name), { ...ready, settled: lease.settled }, to.visibleAt);
        return;
      }
    }
    // What is left of it, if anything: every record settled before the split (the ack file may
    // have held the last of them) or moved out by a link (the last one takes the name with it).
    unlinkIfPresent(this.#leased(lease.name));
  }

  /**
   * After a split's claim of `lease`: removes every other name with its token that holds a subset
   * of its records (a leftover link; a live owner can no longer make one, its name is gone). If
   * another name holds all of the claim's records and more, the claim itself is the leftover: a
   * listing of leased/ is read in several chunks once it is large, and can miss a name that
   * moved during it, so a reaper may have claimed a leftover whose holder another reaper had
   * claimed meanwhile. The claim is then removed (its records are in that name) and ENOENT
   * thrown, as for a claim lost to another reaper. (Two names neither of which holds the other's
   * records are never made; both are left, so nothing can be lost.)
   */
  #dropLeftovers(lease: Lease): void {
    const claim = envelopeLease(lease.name) as EnvelopeLease;
    for (const name of readdirSync(this.group.leased)) {
      const other = envelopeLease(name);
      if (other === null) continue;
      if (isLeftoverOf(other, claim)) {
        unlinkIfPresent(this.#leased(name));
      } else if (isLeftoverOf(claim, other)) {
        unlinkIfPresent(this.#leased(lease.name));
        throw Object.assign(new Error(`${lease.name} is a leftover of ${name}`), { code: 'ENOENT' });
      }
    }
  }

  /**
   * A bad file this consumer holds (claimed, or taken to be split) goes to the dead letters with
   * the reason. A damaged envelope read whole is taken apart first, so that one bad record does
   * not bury its neighbours: each good record not settled yet is moved out to a name of its own
   * (#moveOut: `good`, the same attempt when a claim found the damage, since nothing of it
   * failed), each bad record, and any bytes after the last record that can be delimited, become
   * dead letters of their own with the reason; then the name is removed. Every byte of it is
   * then in ready/ or dead/. A moved-out record's name is a link of the damaged file: it stays
   * readable, since a reader skips the records its name has settled (decodeRecords).
   */
  async #quarantine(lease: Lease, error: CorruptFileError, good: WriteOutTarget): Promise<void> {
    const leasedPath = this.#leased(lease.name);
    const ready = { ...lease.ready, settled: lease.settled };
    // Its name as settled now (a split's lease has the acks of its ack file too), so that a dead
    // letter made of it whole does not hold them unsettled again.
    const readyName = lease.settled === lease.ready.settled ? lease.readyName : formatReady(ready);
    const code = (e: CorruptFileError): DeadCode => (e instanceof TooLargeFileError ? 'too-large' : 'corrupt');
    if (error.envelope === undefined) {
      await moveToDead(leasedPath, this.group.dead, readyName, { code: code(error), reason: error.message }, this.settings.modes);
      return;
    }
    // The file's records are the first `count` delimited; whatever follows them (garbage, or
    // records appended by something else) is its tail, `rest`.
    const { records, rest } = envelopeParts(error.envelope, ready.count);
    if (!records.some((part) => 'record' in part)) {
      // Nothing to save (an empty file, say): the file itself is the evidence.
      await moveToDead(leasedPath, this.group.dead, readyName, { code: code(error), reason: error.message }, this.settings.modes);
      return;
    }
    const first = records.find((part) => 'record' in part);
    const base = first && 'record' in first ? first.record.attributes.id : readyName;
    const saved: Array<{ index: number; record: ReadRecord }> = [];
    const bad: Array<{ bytes: Buffer; name: string; why: { code: DeadCode; reason: string } }> = [];
    for (const part of records) {
      if ((ready.settled & recordBit(part.index)) !== 0n) continue;
      let failure: CorruptFileError | null = 'error' in part ? part.error : null;
      if ('record' in part) {
        try {
          saved.push({ index: part.index, record: readRecord(part.record, part.index, this.settings.maxMessageBytes) });
        } catch (e) {
          if (!(e instanceof CorruptFileError)) throw e;
          failure = e;
        }
      }
      if (failure === null) continue;
      // A record that decodes (over maxMessageBytes, say) keeps a message name: deadLetters() shows
      // its id. Neither name depends on this lease's name, so a redo by another reaper writes the
      // same dead letters again (each rename replacing the last), not new ones.
      const name =
        'record' in part
          ? formatReady({ priority: ready.priority, visibleAt: ready.visibleAt, id: part.record.attributes.id, attempt: ready.attempt })
          : `${base}.${part.index}`;
      const reason = failure.message.startsWith('record ') ? failure.message : `record ${part.index}: ${failure.message}`;
      bad.push({ bytes: part.bytes, name, why: { code: code(failure), reason: `envelope: ${reason}` } });
    }
    const last = records.length - 1;
    // What follows the last record delimited is reported by every name of the file that holds a
    // record it cut off (parts of the envelope, records moved out of it: publisher.ts #names,
    // #moveOut), under one dead name made from the file's first record, so that the reports of
    // several names are one dead letter (each rename replaces the last) and none is lost.
    const cutOff = allRecords(ready.count) & ~allRecords(Math.min(last + 1, ready.count - 1)) & ~ready.settled;
    const restName = `${base}.rest`;
    if (cutOff !== 0n && rest !== null) {
      const reason = `envelope: ${rest.length} bytes after record ${last} are not a record of it (${error.message})`;
      bad.push({ bytes: rest, name: restName, why: { code: 'corrupt', reason } });
    } else if (cutOff !== 0n && records.length < ready.count) {
      // Cut at a record boundary: what is missing has no bytes left, but is not dropped silently.
      const reason = `envelope: records ${last + 1} to ${ready.count - 1} are missing (the file ends after record ${last})`;
      bad.push({ bytes: Buffer.alloc(0), name: restName, why: { code: 'corrupt', reason } });
    }
    // The good records are moved out by links, one by one, as a split does: a kill part-way
    // leaves each either here or in its own name, never both. The bad pieces are copies under
    // names a redo writes again (replacing them); the name goes last.
    for (const { index, record } of saved) await this.#takeOut(lease, index, record, good);
    for (const piece of bad) {
      const tmp = join(this.settings.tmp, `dead-${newToken()}`);
      await writeNewFile(tmp, piece.bytes, this.settings.sync, this.settings.modes);
      await moveToDead(tmp, this.group.dead, piece.name, piece.why, this.settings.modes);
    }
    if (this.settings.sync && bad.length > 0) await fsyncDir(this.group.dead);
    unlinkIfPresent(this.#leased(lease.name)); // what is left of it: its bad records, now in dead/
  }

  /** The leased name of `lease` with another deadline or settled bitmap. */
  #leasedName(lease: Lease, deadline: number, settled: bigint): string {
    return formatLeased({ deadline, ready: formatReady({ ...lease.ready, settled }), token: lease.token });
  }

  /** rename into ready/<bucket>/ (attempt+1 unless told); creates the bucket when it is missing. Returns the new path. */
  async #requeue(from: string, ready: ReadyName, visibleAt: number, attempt = ready.attempt + 1): Promise<string> {
    const bucket = join(this.group.ready, formatBucket(ready.priority, visibleAt, this.settings.bucketMs));
    const target = join(bucket, formatReady({ ...ready, visibleAt, attempt }));
    return this.#intoBucket(bucket, from, () => {
      renameSync(from, target);
      return target;
    });
  }

  /**
   * Runs `place`, which moves `source` into `bucket` of ready/, and returns what it returns. ENOENT
   * with `source` still there means the bucket is missing (not made yet, or removed: consumers
   * remove old empty ones): it is made, and `place` runs again, four times in all. ENOENT with
   * `source` gone is thrown as it is (a lease that was lost). #moveOut does the same in its own loop.
   */
  async #intoBucket<R>(bucket: string, source: string, place: () => R): Promise<R> {
    for (let tries = 0; ; tries++) {
      try {
        return place();
      } catch (error) {
        if (!isErrno(error, 'ENOENT') || !existsSync(source)) throw error;
        if (tries >= 3) throw bucketKeptGoing(error);
        await ensureDir(bucket, this.group.ready, this.settings.sync, this.settings.modes);
      }
    }
  }

  /** The path of a leased name: a concatenation, since `name` is one plain name (path.join normalises, at 1-2 % of a drain). */
  #leased(name: string): string {
    return `${this.group.leased}/${name}`;
  }

  /** The error to throw for a failed `action` on a lease: ENOENT means it was lost (its ack file, if any, is closed). */
  #lost(error: unknown, action: string, lease?: Lease): unknown {
    if (!isErrno(error, 'ENOENT')) return storageError(error, action);
    if (lease) this.#acks.close(lease);
    return new LeaseLostError(
      `Cannot ${action}: the lease was lost (it expired and the message was returned to the queue, or it was settled elsewhere). Nothing was changed; the message will be or was delivered again. Use a longer leaseMs or extend() long work`,
    );
  }
}

/**
 * A bucket of ready/ was removed each of the four times it was made, while the message to go
 * into it was still there: a storage error, not ENOENT, which the caller would take for a lost lease.
 */
function bucketKeptGoing(error: unknown): unknown {
  return storageError(error, 'move a message into its bucket of ready/, removed again each time it was made');
}

/** link() failed with one of NO_LINK_CODES: this file system has no hard links here (#moveOut). */
class NoLinksError extends Error {
  constructor(cause: unknown) {
    super('no hard links here', { cause });
  }
}

/** A leased name of an envelope, parsed for the leftover rules below. */
interface EnvelopeLease {
  name: string;
  token: string;
  count: number;
  settled: bigint;
}

function envelopeLease(name: string): EnvelopeLease | null {
  const leased = parseLeased(name);
  const ready = leased && parseReady(leased.ready);
  return leased && ready && ready.count > 1 ? { name, token: leased.token, count: ready.count, settled: ready.settled } : null;
}

/** `other` has the token of `holder` and a subset of its records (equal sets: the later name is the leftover). */
function isLeftoverOf(other: EnvelopeLease, holder: EnvelopeLease): boolean {
  return (
    other.name !== holder.name &&
    other.token === holder.token &&
    other.count === holder.count &&
    (other.settled & holder.settled) === holder.settled &&
    (other.settled !== holder.settled || holder.name < other.name)
  );
}

/**
 * The names of a listing of leased/ that are leftovers: links that a move-out killed between its
 * link and its rename left (Leases #moveOut). Another name with the same token holds all of a
 * leftover's records and more; it is the one counted, and the reaper that claims it removes the
 * leftovers (#split). Every name made from one lease keeps its token, reapers' claims included.
 */
export function leftoverNames(names: readonly string[]): Set<string> {
  const byToken = new Map<string, EnvelopeLease[]>();
  for (const name of names) {
    const lease = envelopeLease(name);
    if (!lease) continue;
    const same = byToken.get(lease.token);
    if (same) same.push(lease);
    else byToken.set(lease.token, [lease]);
  }
  const leftovers = new Set<string>();
  for (const same of byToken.values()) {
    for (const other of same) if (same.some((holder) => isLeftoverOf(other, holder))) leftovers.add(other.name);
  }
  return leftovers;
}

/** The names of a listing of leased/ that are leftovers of `holder` (see leftoverNames). */
export function leftoversOf(names: readonly string[], holder: string): string[] {
  const h = envelopeLease(holder);
  if (!h) return [];
  return names.filter((name) => {
    const other = envelopeLease(name);
    return other !== null && isLeftoverOf(other, h);
  });
}

/**
 * Puts the complete file `tmp` into `dir` under a name no other file has: `nameAt(visibleAt)`, or
 * with the time moved on by 1 ms while that name is taken. Never replaces a file: the same record
 * written out twice (by a nack and a reaper at once, or by a redo after a crash) is then in the
 * queue twice, which at-least-once allows, and each writer can take back exactly what it made.
 * By link; where the file system has none, by rename after looking (a race with another writer
 * of the same record in that instant can then replace its copy).
 */
function placeNew(tmp: string, dir: string, nameAt: (visibleAt: number) => string, visibleAt: number): string {
  for (let t = visibleAt; t < visibleAt + 1_000; t++) {
    const target = join(dir, nameAt(t));
    try {
      linkSync(tmp, target);
      return target;
    } catch (error) {
      if (isErrno(error, 'EEXIST')) continue;
      if (!isErrno(error, ...NO_LINK_CODES)) throw error;
    }
    try {
      lstatSync(target);
      continue; // taken
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
    renameSync(tmp, target);
    return target;
  }
  throw Object.assign(new Error(`no free name in ${dir} for ${nameAt(visibleAt)} within 1,000 ms of it`), { code: 'EEXIST' });
}
