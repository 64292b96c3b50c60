/**
 * pop() for one group: the bounded index, the wake-ups and the timers.
 *
 * A pop claims the next entry of the index; when the index is empty it refills it from the
 * directory (the truth), and when that finds nothing it waits for the first of:
 *   - a doorbell ring (a watch event, or a push by this same handle),
 *   - the earliest known due time (a delayed message, or a lease to reap),
 *   - the reconciliation period (covers lost watch events: inotify overflow is silent in Node),
 *   - the caller's timeout or abort signal, or close().
 * The watcher is started before the first scan, so no message published in between is missed.
 */

import { join } from 'node:path';
import { moveToDead } from './dead-letters.js';
import { DoorbellWatcher, sweepDoorbell } from './doorbell.js';
import { ClosedError, GroupNotFoundError, isErrno, storageError } from './errors.js';
import type { GroupPaths, Spool } from './layout.js';
import type { ClaimedRecord, Lease, Leases } from './leases.js';
import { Message } from './message.js';
import { allRecords, recordBit } from './names.js';
import { checkInteger, invalid, type ResolvedOptions } from './options.js';
import { ReadyIndex, scanReady } from './ready-index.js';

export interface PopOptions {
  /** How long to wait for a message; 0 looks once. @default wait until a message or abort */
  timeoutMs?: number;
  /** Aborting rejects the pending pop with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * While a consumer is busy, a ring makes it re-read the directory (to see a higher priority)
 * at most every STALE_REFILL_MS, and at most 1/STALE_REFILL_RATIO of its time (a large bucket
 * can take tens of ms to list), but at least every STALE_REFILL_MAX_MS.
 */
const STALE_REFILL_MS = 50;
const STALE_REFILL_MAX_MS = 500;
const STALE_REFILL_RATIO = 20;
/** Claim races lost in a row after which the window is re-read: it is mostly stale by then. */
const LOST_RACES_BEFORE_REFILL = 4;
/** Doorbell files not rung for this long belong to producers that closed or died. */
const DOORBELL_MAX_AGE_MS = 10_000;

export class Receiver<T> {
  readonly #index: ReadyIndex;
  readonly #watcher: DoorbellWatcher;
  #started: Promise<void> | null = null;
  #refilling: Promise<void> | null = null;
  #stale = true;
  #lastRefill = 0;
  #lastScanMs = 0;
  #lastReap = 0;
  #lastSweep = 0;
  #nextDueAt: number | null = null;
  #nextLeaseDeadline: number | null = null;
  readonly #waiters = new Set<() => void>();
  #closed = false;
  #lostRaces = 0;
  /**
   * Envelopes this consumer claimed whose records were not all delivered yet, by priority: pop
   * takes from the first unless the index holds a message of a higher priority.
   */
  #held: Array<{ lease: Lease; records: ClaimedRecord[] }> = [];

  constructor(
    private readonly group: GroupPaths,
    private readonly options: ResolvedOptions,
    private readonly leases: Leases,
    private readonly spool: Spool,
  ) {
    this.#index = new ReadyIndex(options.prefetch);
    this.#watcher = new DoorbellWatcher(group.doorbell, options);
  }

  /** Something may have arrived: re-read the directory before the next claim. */
  wake(): void {
    this.#stale = true;
    for (const waiter of this.#waiters) waiter();
  }

  async pop(options: PopOptions = {}): Promise<Message<T> | null> {
    if (typeof options !== 'object' || options === null) throw invalid('pop options', 'an object', options);
    const timeoutMs =
      options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : checkInteger('timeoutMs', options.timeoutMs, 0, 2 ** 31 - 1);
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal', 'an AbortSignal', signal);
    signal?.throwIfAborted();
    if (this.#closed) throw new ClosedError('The queue is closed; open it again to pop');
    const deadline = Date.now() + timeoutMs;
    // The watcher is only for waiting (it costs an inotify watch, and with chokidar ~1 ms): a
    // pop that will not wait looks once without it.
    if (timeoutMs > 0) await this.#start();
    for (;;) {
      if (this.#closed) return null;
      let message: Message<T> | null;
      try {
        message = await this.#claimNext();
      } catch (error) {
        const missing = isErrno(error, 'ENOENT') || isErrno((error as Error | undefined)?.cause, 'ENOENT');
        if (missing && !(await this.spool.hasGroup(this.group.name))) {
          throw new GroupNotFoundError(`The group ${this.group.name} was deleted; open it again to recreate it`);
        }
        throw storageError(error, 'pop a message');
      }
      if (message) return message;
      const now = Date.now();
      if (now >= deadline || this.#closed) return null;
      const due = this.#nextDueAt === null ? Number.POSITIVE_INFINITY : Math.max(0, this.#nextDueAt - now);
      await this.#wait(Math.min(deadline - now, this.options.reconcileMs, due), signal);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.wake();
    await this.#started?.catch(() => {});
    await this.#watcher.close();
    await this.#release();
    this.leases.closeAckFiles();
  }

  /**
   * Gives back an envelope whose records were not all delivered, when none of it is in a
   * handler's hands: it returns to ready/ as it was, with no attempt used up. Otherwise its lease
   * runs out, and a reaper splits it: each record not settled comes back alone with attempt+1.
   */
  async #release(): Promise<void> {
    const held = this.#held;
    this.#held = [];
    for (const { lease, records } of held) {
      const undelivered = records.reduce((bits, r) => bits | recordBit(r.index), 0n);
      if ((lease.settled | undelivered) !== allRecords(lease.ready.count)) continue; // a delivered record is not settled yet
      await this.leases.release(lease).catch(() => {}); // lost meanwhile: it comes back anyway
    }
  }

  #start(): Promise<void> {
    // Wake once the watcher is ready: a scan that ran before (a pop with timeoutMs 0, which
    // starts no watcher) may have missed a push that rang no one.
    this.#started ??= this.#watcher.start(() => this.wake()).then(() => this.wake());
    return this.#started;
  }

  /** The next record of a held envelope, if its lease still holds (extended when half spent). */
  async #nextHeld(): Promise<Message<T> | null> {
    const held = this.#held[0];
    if (held === undefined) return null;
    const record = held.records.shift() as ClaimedRecord;
    if (held.records.length === 0) this.#held.shift();
    if (held.lease.deadline - Date.now() < this.options.leaseMs / 2) {
      try {
        await this.leases.extend(held.lease, this.options.leaseMs);
      } catch {
        this.#held = this.#held.filter((h) => h !== held); // lost: reaped, its records come back
        return null;
      }
    }
    return new Message<T>(held.lease, record, this.leases, this.options.backoff);
  }

  async #claimNext(): Promise<Message<T> | null> {
    for (;;) {
      if (this.#closed) return null;
      const now = Date.now();
      const refillEvery = Math.min(STALE_REFILL_MAX_MS, Math.max(STALE_REFILL_MS, STALE_REFILL_RATIO * this.#lastScanMs));
      const lostTooMany = this.#lostRaces >= LOST_RACES_BEFORE_REFILL;
      const empty = this.#index.size === 0 && this.#held.length === 0;
      if (empty || lostTooMany || (this.#stale && now - this.#lastRefill >= refillEvery)) await this.#refill();
      const held = this.#held[0];
      if (held) {
        const head = this.#index.peek();
        if (head === undefined || priorityOf(head.name) >= held.lease.ready.priority) {
          const message = await this.#nextHeld();
          if (message) return message;
          continue;
        }
      }
      const entry = this.#index.shift();
      if (!entry) return null;
      const claimed = await this.leases.claim(entry);
      // Lost a race to another consumer: move elsewhere in the window rather than race it for
      // every following name, and after a streak of losses re-read the directory, since the
      // window is then mostly names taken by others. A consumer that never loses a race takes
      // names strictly in order.
      if (claimed === 'taken') {
        this.#index.jump();
        this.#lostRaces++;
      } else {
        this.#lostRaces = 0;
      }
      // A damaged envelope's good messages went back to ready/ on their own: look again now.
      if (claimed === 'quarantined') {
        this.#stale = true;
        this.#lastRefill = 0;
      }
      if (typeof claimed === 'object') {
        if (this.#closed) {
          // close() ran during the claim (its #release is done): give it back unused.
          await this.leases.release(claimed.lease).catch(() => {});
          return null;
        }
        // Our own lease is a due time too: if it is never settled, reap it when it expires.
        this.#nextLeaseDeadline = earliest(this.#nextLeaseDeadline, claimed.lease.deadline);
        this.#nextDueAt = earliest(this.#nextDueAt, claimed.lease.deadline);
        const [first, ...rest] = claimed.records as [ClaimedRecord, ...ClaimedRecord[]];
        if (rest.length > 0) {
          this.#held.push({ lease: claimed.lease, records: rest });
          this.#held.sort((a, b) => a.lease.ready.priority - b.lease.ready.priority); // stable: in claim order within a priority
        }
        return new Message<T>(claimed.lease, first, this.leases, this.options.backoff);
      }
    }
  }

  #refill(): Promise<void> {
    this.#refilling ??= this.#scan().finally(() => {
      this.#refilling = null;
    });
    return this.#refilling;
  }

  async #scan(): Promise<void> {
    this.#stale = false;
    this.#lostRaces = 0;
    const now = Date.now();
    const leaseDue = this.#nextLeaseDeadline !== null && now >= this.#nextLeaseDeadline;
    if (leaseDue || now - this.#lastReap >= this.options.reconcileMs) {
      this.#lastReap = now;
      this.#nextLeaseDeadline = (await this.leases.reap(now)).nextDeadline;
    }
    if (now - this.#lastSweep >= DOORBELL_MAX_AGE_MS) {
      this.#lastSweep = now; // keeps the watched doorbell at O(live producers) files
      await sweepDoorbell(this.group.doorbell, DOORBELL_MAX_AGE_MS, now);
    }
    const scan = await scanReady(this.group.ready, this.spool.bucketMs, this.options.prefetch, now);
    this.#index.replace(scan.entries);
    this.#lastRefill = Date.now();
    this.#lastScanMs = this.#lastRefill - now;
    this.#nextDueAt = earliest(scan.nextDueAt, this.#nextLeaseDeadline);
    for (const stranger of scan.strangers) {
      await moveToDead(
        join(stranger.dir, stranger.name),
        this.group.dead,
        null,
        {
          code: 'bad-name',
          reason: stranger.reason,
          originalName: stranger.name,
        },
        this.spool.modes,
      );
    }
  }

  /** Waits for a wake-up, `ms`, or the signal. The timer keeps the process alive while waiting. */
  #wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason); // aborted while this pop was scanning
        return;
      }
      if (this.#stale) {
        resolve(); // rung while this pop was scanning: the scan may have missed it, look again
        return;
      }
      const finish = (error?: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(wakeUp);
        if (error === undefined) resolve();
        else reject(error);
      };
      const wakeUp = () => finish();
      const onAbort = () => finish(signal?.reason);
      const timer = setTimeout(() => {
        this.#stale = true;
        finish();
      }, ms);
      this.#waiters.add(wakeUp);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** The priority of a ready name: its first character. */
function priorityOf(readyName: string): number {
  return readyName.charCodeAt(0) - 48;
}

function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}
