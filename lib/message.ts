/**
 * A delivered message and its lease. ack, nack and extend act on the exact leased name of this
 * delivery, one at a time, so they can never touch another consumer's delivery. The messages
 * of one envelope share its lease: extend() of one extends them all.
 */
import { backoffDelay } from './backoff.js';
import { MessageSettledError } from './errors.js';
import type { ClaimedRecord, Lease, Leases } from './leases.js';
import { type BackoffOptions, checkInteger, invalid } from './options.js';

export interface NackOptions {
  /** Delay before the retry; without it, the backoff of the queue applies. */
  delayMs?: number;
  /** Why it failed: kept with the message if it becomes a dead letter. */
  reason?: string;
}

export class Message<T = unknown> {
  /** The id returned by push(). */
  readonly id: string;
  /** The payload decoded by the codec (a Buffer for the raw codec). */
  readonly data: T;
  /** The payload bytes. */
  readonly body: Buffer;
  /** Which delivery this is: 1 the first time, more after a nack or an expired lease. */
  readonly attempts: number;
  /** When it was pushed (ms since the epoch). */
  readonly enqueuedAt: number;
  /** 0 (first) to 9 (last). */
  readonly priority: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The topic it was pushed with, if any. */
  readonly topic: string | undefined;

  readonly #lease: Lease;
  readonly #claimed: ClaimedRecord;
  readonly #leases: Leases;
  readonly #backoff: Required<BackoffOptions>;
  #settled: 'ack' | 'nack' | null = null;
  #chain: Promise<unknown> = Promise.resolve();

  /** @internal */
  constructor(lease: Lease, claimed: ClaimedRecord, leases: Leases, backoff: Required<BackoffOptions>) {
    const { record } = claimed;
    this.id = lease.ready.count === 1 ? lease.ready.id : record.attributes.id;
    this.data = record.data as T;
    this.body = record.payload;
    this.attempts = lease.ready.attempt;
    this.enqueuedAt = record.attributes.enqueuedAt;
    this.priority = lease.ready.priority;
    this.headers = Object.freeze({ ...(record.attributes.headers ?? {}) });
    this.topic = typeof record.attributes.topic === 'string' ? record.attributes.topic : undefined;
    this.#lease = lease;
    this.#claimed = claimed;
    this.#leases = leases;
    this.#backoff = backoff;
  }

  /** Whether ack() or nack() of this handle succeeded. */
  get settled(): boolean {
    return this.#settled !== null;
  }

  /** When the lease ends unless extended (ms since the epoch). */
  get leaseDeadline(): number {
    return this.#lease.deadline;
  }

  /** Done: removes the message. Idempotent; rejects with ELEASE_LOST if the lease was lost. */
  ack(): Promise<void> {
    return this.#serial(async () => {
      if (this.#settled === 'ack') return;
      this.#ensureOpen('ack');
      await this.#leases.ack(this.#lease, this.#claimed.index);
      this.#settled = 'ack';
    });
  }

  /** Failed: returns it for a later attempt (attempts + 1), or to the dead letters after the last. */
  nack(options: NackOptions = {}): Promise<void> {
    return this.#serial(async () => {
      this.#ensureOpen('nack');
      if (typeof options !== 'object' || options === null) throw invalid('nack options', 'an object', options);
      const delayMs =
        options.delayMs === undefined
          ? backoffDelay(this.attempts, this.#backoff)
          : checkInteger('delayMs', options.delayMs, 0, 2 ** 31 - 1);
      await this.#leases.retry(this.#lease, this.#claimed, delayMs, options.reason ?? 'nacked');
      this.#settled = 'nack';
    });
  }

  /** Keeps the lease for `ms` more milliseconds from now. Rejects with ELEASE_LOST if it was lost. */
  extend(ms: number): Promise<void> {
    return this.#serial(async () => {
      this.#ensureOpen('extend');
      await this.#leases.extend(this.#lease, checkInteger('ms', ms, 1, 2 ** 31 - 1));
    });
  }

  #ensureOpen(action: string): void {
    if (this.#settled) {
      throw new MessageSettledError(`Cannot ${action} message ${this.id}: it was already ${this.#settled === 'ack' ? 'acked' : 'nacked'}`);
    }
  }

  /** One lease operation at a time: an ack must not race the rename of an extend. */
  #serial<R>(op: () => Promise<R>): Promise<R> {
    const run = this.#chain.then(op, op);
    this.#chain = run.catch(() => {});
    return run;
  }
}
