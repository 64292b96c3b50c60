/**
 * Group commit of directory fsyncs. Publishes link their files into ready/ and then join the
 * next commit: while one round of directory fsyncs runs, new arrivals accumulate, and the next
 * round syncs each distinct directory once for all of them. There is no artificial delay: an
 * idle queue commits at once.
 *
 * Never retry a failed fsync (fsyncgate): the kernel may have dropped the dirty pages and a
 * second fsync would lie. A failure rejects every publish of the round with `EDURABILITY`, and
 * the committer stays failed, so the queue refuses further publishes (fail-stop).
 */

import { fsyncBucket } from './durable-fs.js';
import { DurabilityError } from './errors.js';

export interface CommitRequest {
  /**
   * Directories whose entries changed and must be fsynced before the publish resolves: buckets of
   * ready/, and ready/ itself where a bucket was made. One that is gone has nothing left to sync (fsyncBucket).
   */
  dirs: Iterable<string>;
  /** Doorbell directories to ring once the round's directory fsyncs are under way. */
  doorbells: Iterable<string>;
}

interface Pending extends CommitRequest {
  resolve: () => void;
  reject: (error: Error) => void;
}

export class GroupCommit {
  #pending: Pending[] = [];
  #running = false;
  #failure: DurabilityError | null = null;

  constructor(
    private readonly sync: boolean,
    private readonly ring: (doorbellDir: string) => void,
  ) {}

  get failure(): DurabilityError | null {
    return this.#failure;
  }

  commit(request: CommitRequest): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (!this.sync) {
      // Nothing to wait for: ring now. Rounds come one after another from the publisher, so
      // they are rung and resolved in order all the same.
      for (const d of request.doorbells) this.ring(d);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ ...request, resolve, reject });
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#pending.length > 0) {
      const round = this.#pending;
      this.#pending = [];
      const dirs = new Set<string>();
      const doorbells = new Set<string>();
      for (const p of round) {
        for (const d of p.dirs) dirs.add(d);
        for (const d of p.doorbells) doorbells.add(d);
      }
      const flushed = Promise.all([...dirs].map((d) => fsyncBucket(d)));
      // Rung while the flushes run, not after: the names are visible already (a consumer's scan
      // could find them now), a ring only says so, and the JS thread is idle until the flushes
      // are done. A consumer wakes a flush earlier, and the rename is off the publish's path.
      for (const d of doorbells) {
        try {
          this.ring(d); // synchronous, and does not throw (doorbell.ts)
        } catch {
          // Were it ever to, a lost ring costs latency only (consumers' reconciliation scan),
          // while a round left unsettled would hold every later publish of the queue.
        }
      }
      try {
        await flushed;
      } catch (error) {
        this.#failure = new DurabilityError(
          `A directory fsync failed after messages became visible, so whether they survive a power loss is unknown (${(error as Error).message}). The queue refuses further publishes; check the disk and restart the process`,
          { cause: error },
        );
        for (const p of [...round, ...this.#pending]) p.reject(this.#failure);
        this.#pending = [];
        break;
      }
      for (const p of round) p.resolve();
    }
    this.#running = false;
  }
}
