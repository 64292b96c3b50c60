/**
 * openQueue() and the Queue handle: composes the spool layout, the publisher, the receiver
 * and the lease protocol for one subscriber group.
 */
import { readdir, rename, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type ConsumeOptions, Consumer, type Handler } from './consume.js';
import { type DeadLetter, listDeadLetters, removeReason } from './dead-letters.js';
import { DoorbellRinger } from './doorbell.js';
import { ensureDir } from './durable-fs.js';
import { ClosedError, ioHint, isErrno, SpoolPathError, SpoolqError, storageError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { type GroupPaths, openSpool, type Spool } from './layout.js';
import { Leases } from './leases.js';
import type { Message } from './message.js';
import { formatBucket, formatReady, IdGenerator, parseBucket, parseReady } from './names.js';
import { invalid, type QueueOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Publisher, type PushOptions } from './publisher.js';
import { isOldBucket, listBuckets } from './ready-index.js';
import { type PopOptions, Receiver } from './receiver.js';
import { recover } from './recovery.js';

export interface QueueStats {
  /** Due messages waiting to be claimed. */
  ready: number;
  /** Claimed messages whose lease is running (or expired and not yet reaped). */
  leased: number;
  /** Messages not yet due: pushed with delayMs, or nacked with a backoff. */
  delayed: number;
  /** Dead letters, including quarantined files. */
  dead: number;
  /** How long the oldest due message has been waiting, or null when none is. */
  oldestReadyAgeMs: number | null;
}

export interface MessagesOptions {
  /** Aborting it ends the iteration (the loop exits normally). */
  signal?: AbortSignal;
}

/** A queue handle: publishes to every group of the spool and consumes from its own group. */
export class Queue<T = unknown, In = T> {
  readonly #spool: Spool;
  readonly #group: GroupPaths;
  readonly #options: ResolvedOptions;
  readonly #commit: GroupCommit;
  readonly #publisher: Publisher;
  readonly #receiver: Receiver<T>;
  readonly #ringer: DoorbellRinger;
  readonly #consumers = new Set<Consumer<T>>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | null = null;

  /** @internal use openQueue() */
  constructor(spool: Spool, group: GroupPaths, options: ResolvedOptions, leases: Leases) {
    this.#spool = spool;
    this.#group = group;
    this.#options = options;
    this.#ringer = new DoorbellRinger(spool.modes);
    this.#commit = new GroupCommit(options.durability === 'fsync', async (doorbell) => {
      if (doorbell === group.doorbell) this.#receiver.wake(); // this process first, without a syscall
      await this.#ringer.ring(doorbell);
    });
    this.#publisher = new Publisher(spool, options, this.#commit, new IdGenerator());
    this.#receiver = new Receiver<T>(group, options, leases, spool);
  }

  /** The spool directory (absolute). */
  get dir(): string {
    return this.#spool.root;
  }

  /** The subscriber group this handle consumes from. */
  get group(): string {
    return this.#group.name;
  }

  /** The resolved options, defaults included. */
  get options(): ResolvedOptions {
    return this.#options;
  }

  /** Publishes one message to every group; resolves to its id once it is committed. */
  async push(data: In, options?: PushOptions): Promise<string> {
    this.#ensureOpen('push');
    const [id] = await this.#track(this.#publisher.publish([{ data, options }]));
    return id as string;
  }

  /** Publishes several messages as one commit (one round of directory fsyncs). */
  async pushMany(items: readonly In[], options?: PushOptions): Promise<string[]> {
    this.#ensureOpen('push');
    if (!Array.isArray(items)) throw invalid('items', 'an array', items);
    return this.#track(this.#publisher.publish(items.map((data) => ({ data, options }))));
  }

  /** Claims the next message, waiting as `options` allow; null when none arrived in time. */
  async pop(options?: PopOptions): Promise<Message<T> | null> {
    this.#ensureOpen('pop');
    return this.#receiver.pop(options);
  }

  /** Runs `handler` for each message: resolve → ack, throw → nack with backoff. */
  consume(handler: Handler<T>, options: ConsumeOptions = {}): Consumer<T> {
    this.#ensureOpen('consume');
    const consumer = new Consumer<T>((o) => this.#receiver.pop(o), handler, this.#options.leaseMs, options);
    this.#consumers.add(consumer);
    void consumer.closed.then(() => this.#consumers.delete(consumer));
    return consumer;
  }

  /** Iterates messages as they arrive until `signal` aborts or the queue closes. Ack each one. */
  async *messages(options: MessagesOptions = {}): AsyncGenerator<Message<T>, void, undefined> {
    this.#ensureOpen('iterate');
    const { signal } = options;
    for (;;) {
      let message: Message<T> | null;
      try {
        message = await this.#receiver.pop(signal ? { signal } : {});
      } catch (error) {
        if (signal?.aborted) return;
        throw error;
      }
      if (message === null) return;
      yield message;
    }
  }

  /** Counts of this handle's group. Lists the group's directories: O(backlog). */
  stats(): Promise<QueueStats> {
    return withStorageErrors('read the stats', () => this.#stats(Date.now()));
  }

  async #stats(now: number): Promise<QueueStats> {
    const stats: QueueStats = { ready: 0, leased: 0, delayed: 0, dead: 0, oldestReadyAgeMs: null };
    let oldest = Number.POSITIVE_INFINITY;
    for (const bucket of await listBuckets(this.#group.ready, null)) {
      for (const name of await readdir(join(this.#group.ready, bucket)).catch(() => [] as string[])) {
        const ready = parseReady(name);
        if (!ready) continue;
        if (ready.visibleAt <= now) {
          stats.ready++;
          oldest = Math.min(oldest, ready.visibleAt);
        } else {
          stats.delayed++;
        }
      }
    }
    stats.leased = (await readdir(this.#group.leased)).filter((n) => !n.startsWith('.')).length;
    stats.dead = (await readdir(this.#group.dead)).filter((n) => !n.endsWith('.why') && !n.startsWith('.')).length;
    if (stats.ready > 0) stats.oldestReadyAgeMs = Math.max(0, now - oldest);
    return stats;
  }

  /** The group's dead letters: messages out of attempts, and quarantined files, with reasons. */
  deadLetters(): Promise<DeadLetter[]> {
    return withStorageErrors('list the dead letters', () => listDeadLetters(this.#group.dead));
  }

  /**
   * Returns dead letters to the queue with a fresh count of attempts: those with the given ids,
   * or all. Quarantined files (corrupt, too large, bad names) stay: they cannot be delivered.
   * Resolves to the ids requeued.
   */
  async requeueDead(ids?: readonly string[]): Promise<string[]> {
    this.#ensureOpen('requeue');
    if (ids !== undefined && !Array.isArray(ids)) throw invalid('ids', 'an array of message ids', ids);
    return withStorageErrors('requeue dead letters', () => this.#requeueDead(ids ? new Set(ids) : null));
  }

  async #requeueDead(wanted: Set<string> | null): Promise<string[]> {
    const requeued: string[] = [];
    for (const letter of await listDeadLetters(this.#group.dead)) {
      const ready = parseReady(letter.file);
      if (!ready || letter.code === 'corrupt' || letter.code === 'too-large') continue;
      if (wanted && !wanted.has(ready.id)) continue;
      const now = Date.now(); // per letter: a long listing must not make the target bucket old
      const bucket = join(this.#group.ready, formatBucket(ready.priority, now, this.#spool.bucketMs));
      await ensureDir(bucket, this.#group.ready, this.#options.durability === 'fsync', this.#spool.modes);
      const from = join(this.#group.dead, letter.file);
      try {
        await rename(from, join(bucket, formatReady({ ...ready, visibleAt: now, attempt: 1 })));
      } catch (error) {
        if (isErrno(error, 'ENOENT')) continue; // requeued by another process meanwhile
        throw error;
      }
      await removeReason(from);
      requeued.push(ready.id);
    }
    if (requeued.length > 0) await this.#commit.commit({ dirs: [], doorbells: [this.#group.doorbell] });
    return requeued;
  }

  /** Removes every waiting message (ready and delayed) of this group. Resolves to the count. */
  purge(): Promise<number> {
    this.#ensureOpen('purge');
    return withStorageErrors('purge', () => this.#purge());
  }

  async #purge(): Promise<number> {
    let removed = 0;
    for (const bucket of await listBuckets(this.#group.ready, null)) {
      const dir = join(this.#group.ready, bucket);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        try {
          await unlink(join(dir, name));
          removed++;
        } catch (error) {
          if (!isErrno(error, 'ENOENT', 'EISDIR', 'EPERM')) throw error;
        }
      }
      // Only old buckets: a producer may be linking into a current one right now.
      const bucketName = parseBucket(bucket);
      if (bucketName && isOldBucket(bucketName.bucket, this.#spool.bucketMs, Date.now())) await rmdir(dir).catch(() => {});
    }
    return removed;
  }

  /**
   * Stops consumers (waiting for running handlers), waits for publishes in flight, and releases
   * every handle so the process can exit. Idempotent: returns the same promise each time.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#consumers].map((c) => c.close()));
      await Promise.allSettled([...this.#inFlight]);
      await this.#receiver.close();
    })();
    return this.#closing;
  }

  #ensureOpen(action: string): void {
    if (this.#closing) throw new ClosedError(`Cannot ${action}: the queue is closed; open it again`);
  }

  #track<R>(promise: Promise<R>): Promise<R> {
    this.#inFlight.add(promise);
    const untrack = () => this.#inFlight.delete(promise);
    promise.then(untrack, untrack);
    return promise;
  }
}

/**
 * Opens (and on first use creates) the spool at `dir` and the handle's group, runs recovery,
 * and resolves to a queue handle.
 */
export function openQueue(dir: string, options: QueueOptions & { codec: 'raw' }): Promise<Queue<Buffer, string | Uint8Array>>;
export function openQueue<T = unknown>(dir: string, options?: QueueOptions): Promise<Queue<T>>;
export async function openQueue(dir: string, options: QueueOptions = {}): Promise<Queue<any, any>> {
  const resolved = resolveOptions(options);
  const sync = resolved.durability === 'fsync';
  const spool = await openSpool(dir, sync, { share: resolved.share, strictModes: resolved.strictModes });
  let group: GroupPaths;
  try {
    group = await spool.ensureGroup(resolved.group, sync);
  } catch (error) {
    throw openError(spool.root, resolved.group, error);
  }
  const leases = new Leases(group, {
    leaseMs: resolved.leaseMs,
    maxAttempts: resolved.maxAttempts,
    maxMessageBytes: resolved.maxMessageBytes,
    bucketMs: spool.bucketMs,
    sync,
    modes: spool.modes,
  });
  try {
    await recover(spool, leases);
  } catch (error) {
    throw openError(spool.root, resolved.group, error);
  }
  return new Queue(spool, group, resolved, leases);
}

function openError(root: string, group: string, error: unknown): unknown {
  if (error instanceof SpoolqError || (error as NodeJS.ErrnoException).syscall === undefined) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  return new SpoolPathError(`Cannot open group ${group} of the spool at ${root}: ${code} (${(error as Error).message}); ${ioHint(code)}`, {
    cause: error,
  });
}

async function withStorageErrors<R>(action: string, fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (error) {
    throw storageError(error, action);
  }
}
