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
 * never ack, extend or nack the redelivered copy (fencing). No fsync here: losing a claim or
 * an ack in a crash only causes a redelivery, which at-least-once allows.
 *
 * The renames and unlinks of one message are synchronous calls: each is one metadata change
 * of a few µs in the kernel, and a trip through libuv's thread pool would cost it 50–100 µs
 * of CPU (bench/README.md, "Consumer fast path"). Listings stay asynchronous.
 */
import { renameSync, unlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type DeadCode, moveToDead } from './dead-letters.js';
import { ensureDir, exists, type Modes } from './durable-fs.js';
import { isErrno, LeaseLostError, storageError } from './errors.js';
import type { GroupPaths } from './layout.js';
import { CorruptFileError, type DecodedFile } from './message-file.js';
import { formatBucket, formatLeased, formatReady, newToken, parseLeased, parseReady, type ReadyName } from './names.js';
import { readMessageFile, TooLargeFileError } from './read-message.js';
import type { IndexEntry } from './ready-index.js';

export interface Lease {
  /** The current leased name (changes on extend). */
  name: string;
  readonly ready: ReadyName;
  readonly readyName: string;
  readonly token: string;
  deadline: number;
}

export interface Claimed {
  lease: Lease;
  file: DecodedFile;
  /** The payload decoded by the codec the file was written with. */
  data: unknown;
}

export interface LeaseSettings {
  leaseMs: number;
  maxAttempts: number;
  maxMessageBytes: number;
  bucketMs: number;
  sync: boolean;
  modes: Modes;
}

export class Leases {
  constructor(
    readonly group: GroupPaths,
    private readonly settings: LeaseSettings,
  ) {}

  /**
   * Claims `entry`: 'taken' when another consumer won it (or it is gone), 'quarantined' when
   * the file was bad and moved to the dead letters.
   */
  async claim(entry: IndexEntry, now = Date.now()): Promise<Claimed | 'taken' | 'quarantined'> {
    const ready = parseReady(entry.name);
    if (!ready) return 'taken';
    const lease: Lease = { name: '', ready, readyName: entry.name, token: newToken(), deadline: now + this.settings.leaseMs };
    lease.name = formatLeased({ deadline: lease.deadline, ready: entry.name, token: lease.token });
    try {
      renameSync(join(entry.dir, entry.name), this.#leased(lease.name));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return 'taken';
      throw storageError(error, 'claim a message');
    }
    try {
      const file = await readMessageFile(this.#leased(lease.name), this.settings.maxMessageBytes);
      return { lease, file, data: file.data };
    } catch (error) {
      // Gone between our rename and the read: the group was deleted, or the lease expired and
      // another consumer reaped it. Either way it is not ours any more.
      if (isErrno(error, 'ENOENT')) return 'taken';
      if (!(error instanceof CorruptFileError)) throw storageError(error, 'read a claimed message'); // it is retried when the lease expires
      const code: DeadCode = error instanceof TooLargeFileError ? 'too-large' : 'corrupt';
      await moveToDead(this.#leased(lease.name), this.group.dead, entry.name, { code, reason: error.message }, this.settings.modes);
      return 'quarantined';
    }
  }

  async extend(lease: Lease, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    const name = formatLeased({ deadline, ready: lease.readyName, token: lease.token });
    try {
      renameSync(this.#leased(lease.name), this.#leased(name));
    } catch (error) {
      throw this.#lost(error, 'extend');
    }
    lease.name = name;
    lease.deadline = deadline;
  }

  async ack(lease: Lease): Promise<void> {
    try {
      unlinkSync(this.#leased(lease.name));
    } catch (error) {
      throw this.#lost(error, 'ack');
    }
  }

  /**
   * Returns a message to ready/ with attempt+1, visible after `delayMs`; after the last attempt
   * it becomes a dead letter.
   */
  async retry(lease: Lease, delayMs: number, reason: string): Promise<void> {
    const from = this.#leased(lease.name);
    if (lease.ready.attempt >= this.settings.maxAttempts) {
      const moved = await moveToDead(
        from,
        this.group.dead,
        lease.readyName,
        {
          code: 'max-attempts',
          reason: `failed ${lease.ready.attempt} of ${this.settings.maxAttempts} attempts: ${reason}`,
        },
        this.settings.modes,
      );
      if (!moved) throw this.#lost(Object.assign(new Error('gone'), { code: 'ENOENT' }), 'nack');
      return;
    }
    try {
      await this.#requeue(from, lease.ready, Date.now() + delayMs);
    } catch (error) {
      throw this.#lost(error, 'nack');
    }
  }

  /**
   * Returns every expired lease to ready/ (or dead/ after the last attempt). Resolves to the
   * earliest deadline still pending, or null, so a waiting consumer can time its next reap.
   */
  async reap(now = Date.now()): Promise<{ returned: number; nextDeadline: number | null }> {
    let returned = 0;
    for (const name of (await readdir(this.group.leased)).sort()) {
      if (name.startsWith('.')) continue;
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
      if (leased.deadline > now) return { returned, nextDeadline: leased.deadline };
      try {
        if (ready.attempt >= this.settings.maxAttempts) {
          await moveToDead(
            from,
            this.group.dead,
            leased.ready,
            {
              code: 'lease-expired',
              reason: `the lease of attempt ${ready.attempt} of ${this.settings.maxAttempts} expired (the consumer died or was too slow)`,
            },
            this.settings.modes,
          );
        } else {
          await this.#requeue(from, ready, now);
        }
        returned++;
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error; // acked, extended or reaped by another meanwhile
      }
    }
    return { returned, nextDeadline: null };
  }

  /** rename into ready/<bucket>/ with attempt+1; creates the bucket when it is missing. */
  async #requeue(from: string, ready: ReadyName, visibleAt: number): Promise<void> {
    const bucket = join(this.group.ready, formatBucket(ready.priority, visibleAt, this.settings.bucketMs));
    const target = join(bucket, formatReady({ ...ready, visibleAt, attempt: ready.attempt + 1 }));
    for (let attempt = 0; ; attempt++) {
      try {
        renameSync(from, target);
        return;
      } catch (error) {
        // ENOENT: either the source is gone (the lease was lost) or the bucket is missing.
        if (!isErrno(error, 'ENOENT') || attempt >= 3 || !(await exists(from))) throw error;
        await ensureDir(bucket, this.group.ready, this.settings.sync, this.settings.modes);
      }
    }
  }

  #leased(name: string): string {
    return join(this.group.leased, name);
  }

  #lost(error: unknown, action: string): unknown {
    if (!isErrno(error, 'ENOENT')) return storageError(error, action);
    return new LeaseLostError(
      `Cannot ${action}: the lease was lost (it expired and the message was returned to the queue, or it was settled elsewhere). Nothing was changed; the message will be or was delivered again. Use a longer leaseMs or extend() long work`,
    );
  }
}
