/**
 * openQueue() and the Queue handle: composes the spool layout, the publisher, the receiver
 * and the lease protocol for one subscriber group.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readAcks } from './ack-files.js';
import { changePatterns, MATCH_ALL, readPatterns, setPatterns } from './bindings.js';
import { type ConsumeOptions, Consumer, type Handler } from './consume.js';
import { type DeadLetter, listDeadLetters, removeReason } from './dead-letters.js';
import { DoorbellRinger, RING_INTERVAL_MS } from './doorbell.js';
import { ensureDir, fsyncDir } from './durable-fs.js';
import {
  ClosedError,
  GroupNotFoundError,
  InvalidOptionError,
  ioHint,
  isErrno,
  SpoolPathError,
  SpoolqError,
  storageError,
} from './errors.js';
import { GroupCommit } from './group-commit.js';
import { type GroupPaths, openSpool, type Spool } from './layout.js';
import { Leases, leftoverNames } from './leases.js';
import type { Message } from './message.js';
import { formatBucket, formatReady, IdGenerator, parseBucket, parseLeased, parseReady, unsettled } from './names.js';
import {
  checkGroupName,
  checkPatterns,
  invalid,
  type QueueOptions,
  type ResolvedOptions,
  resolveOptions,
  UNROUTED_GROUP,
} from './options.js';
import { Publisher, type PushOptions } from './publisher.js';
import { isOldBucket, listBuckets } from './ready-index.js';
import { type PopOptions, Receiver } from './receiver.js';
import { recover } from './recovery.js';
import { type SubscribeOptions, Subscription } from './subscription.js';

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
  /** Pushes of this handle, since it was opened, that matched no group (see `keepUnrouted`). */
  unrouted: number;
}

/** A subscriber group and the topic patterns it is bound to. */
export interface GroupInfo {
  name: string;
  /** Sorted; ['#'] receives every message, [] none. */
  topics: string[];
}

/** For operations that may touch many files (requeueDead, purge). */
export interface ProgressOptions {
  /** Called as the operation goes: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface MessagesOptions {
  /** Aborting it ends the iteration (the loop exits normally). */
  signal?: AbortSignal;
}

/**
 * A queue handle: publishes to the groups of the spool whose bindings match, and consumes from
 * its own group (none with `group: null`).
 */
export class Queue<T = unknown, In = T> {
  readonly #spool: Spool;
  readonly #own: { group: GroupPaths; receiver: Receiver<T> } | null;
  readonly #options: ResolvedOptions;
  readonly #commit: GroupCommit;
  readonly #publisher: Publisher;
  readonly #ringer: DoorbellRinger;
  readonly #consumers = new Set<Consumer<T>>();
  readonly #subscriptions = new Set<Subscription>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | null = null;

  /** @internal use openQueue() */
  constructor(spool: Spool, own: { group: GroupPaths; leases: Leases } | null, options: ResolvedOptions) {
    this.#spool = spool;
    this.#options = options;
    this.#own = own && { group: own.group, receiver: new Receiver<T>(own.group, options, own.leases, spool) };
    this.#ringer = new DoorbellRinger(spool.modes, options.durability === 'fsync' ? 0 : RING_INTERVAL_MS);
    this.#commit = new GroupCommit(options.durability === 'fsync', (doorbell) => {
      if (doorbell === this.#own?.group.doorbell) this.#own.receiver.wake(); // this process first, without a syscall
      this.#ringer.ring(doorbell);
    });
    this.#publisher = new Publisher(spool, options, this.#commit, new IdGenerator());
  }

  /** The spool directory (absolute). */
  get dir(): string {
    return this.#spool.root;
  }

  /** The subscriber group this handle consumes from; null for a publish-only handle. */
  get group(): string | null {
    return this.#own?.group.name ?? null;
  }

  /** The resolved options, defaults included. */
  get options(): ResolvedOptions {
    return this.#options;
  }

  /** Publishes one message to every group it matches; resolves to its id once it is committed. */
  async push(data: In, options?: PushOptions): Promise<string> {
    this.#ensureOpen('push');
    const [id] = await this.#track(this.#publisher.publish([data], options));
    return id as string;
  }

  /** Publishes several messages as one commit (one round of directory fsyncs). */
  async pushMany(items: readonly In[], options?: PushOptions): Promise<string[]> {
    this.#ensureOpen('push');
    if (!Array.isArray(items)) throw invalid('items', 'an array', items);
    return this.#track(this.#publisher.publish(items, options));
  }

  /** Claims the next message, waiting as `options` allow; null when none arrived in time. */
  async pop(options?: PopOptions): Promise<Message<T> | null> {
    this.#ensureOpen('pop');
    return this.#ownGroup('pop').receiver.pop(options);
  }

  /** Runs `handler` for each message: resolve → ack, throw → nack with backoff. */
  consume(handler: Handler<T>, options: ConsumeOptions = {}): Consumer<T> {
    this.#ensureOpen('consume');
    const { receiver } = this.#ownGroup('consume');
    const consumer = new Consumer<T>((o) => receiver.pop(o), handler, this.#options.leaseMs, options);
    this.#consumers.add(consumer);
    void consumer.closed.then(() => this.#consumers.delete(consumer));
    return consumer;
  }

  /** Iterates messages as they arrive until `signal` aborts or the queue closes. Ack each one. */
  async *messages(options: MessagesOptions = {}): AsyncGenerator<Message<T>, void, undefined> {
    this.#ensureOpen('iterate');
    const { receiver } = this.#ownGroup('iterate');
    const { signal } = options;
    for (;;) {
      let message: Message<T> | null;
      try {
        message = await receiver.pop(signal ? { signal } : {});
      } catch (error) {
        if (signal?.aborted) return;
        throw error;
      }
      if (message === null) return;
      yield message;
    }
  }

  /**
   * Counts of a group: this handle's, or `group`. A publish-only handle without `group` sums
   * every group. Lists the group's directories: O(backlog).
   */
  stats(group?: string): Promise<QueueStats> {
    return withStorageErrors('read the stats', async () => {
      const now = Date.now();
      let groups: GroupPaths[];
      if (group !== undefined) groups = [await this.#existingGroup(group)];
      else if (this.#own) groups = [this.#own.group];
      else groups = (await this.#spool.groupNames()).map((name) => this.#spool.group(name));
      const stats: QueueStats = { ready: 0, leased: 0, delayed: 0, dead: 0, oldestReadyAgeMs: null, unrouted: this.#publisher.unrouted };
      for (const paths of groups) {
        const counts = await groupStats(paths, now);
        stats.ready += counts.ready;
        stats.leased += counts.leased;
        stats.delayed += counts.delayed;
        stats.dead += counts.dead;
        if (counts.oldestReadyAgeMs !== null) stats.oldestReadyAgeMs = Math.max(stats.oldestReadyAgeMs ?? 0, counts.oldestReadyAgeMs);
      }
      return stats;
    });
  }

  /** The groups of the spool and their bindings, by name. */
  groups(): Promise<GroupInfo[]> {
    return withStorageErrors('list the groups', async () => {
      const names = (await this.#spool.groupNames()).sort();
      return Promise.all(names.map(async (name) => ({ name, topics: (await readPatterns(this.#spool.group(name))) ?? [MATCH_ALL] })));
    });
  }

  /**
   * Binds `group` to more topic patterns: pushes called after this resolves, in any process,
   * are routed by them. Binding a pattern twice is harmless.
   */
  bind(group: string, patterns: readonly string[]): Promise<void> {
    return this.#rebind('bind', group, patterns, (paths, valid) => changePatterns(this.#spool, paths, { add: valid }, this.#sync));
  }

  /** Removes patterns from `group`'s bindings; a group bound to nothing receives nothing. */
  unbind(group: string, patterns: readonly string[]): Promise<void> {
    return this.#rebind('unbind', group, patterns, (paths, valid) => changePatterns(this.#spool, paths, { remove: valid }, this.#sync));
  }

  async #rebind(
    action: string,
    group: string,
    patterns: readonly string[],
    change: (paths: GroupPaths, valid: readonly string[]) => Promise<void>,
  ): Promise<void> {
    this.#ensureOpen(action);
    checkGroupName(group);
    const valid = checkPatterns('patterns', patterns);
    if (group === UNROUTED_GROUP) {
      throw new InvalidOptionError(`Cannot ${action} the group '${UNROUTED_GROUP}': it receives only what no other group matched`);
    }
    await withStorageErrors(`${action} group ${group}`, async () => change(await this.#existingGroup(group), valid));
  }

  /**
   * Deletes a group and every message in it; resolves to false if it did not exist. Pushes
   * linking into it as it goes skip it. Not this handle's own group: close the handle first.
   */
  async deleteGroup(group: string): Promise<boolean> {
    this.#ensureOpen('delete a group');
    checkGroupName(group);
    if (group === this.group) {
      throw new InvalidOptionError(
        `Cannot delete group ${group}: this handle consumes from it; close it and delete the group from another handle (group: null)`,
      );
    }
    return withStorageErrors(`delete group ${group}`, async () => {
      // One rename takes it out of groups/ whole: publishers skip it from then on, consumers find
      // it gone. Its files are then removed from tmp/ (by recovery, if this process dies first).
      const grave = join(this.#spool.tmp, `deleted-${group}-${randomBytes(6).toString('hex')}`);
      try {
        await rename(this.#spool.group(group).root, grave);
      } catch (error) {
        if (isErrno(error, 'ENOENT')) return false;
        throw error;
      }
      if (this.#sync) await fsyncDir(this.#spool.groups);
      await this.#spool.routesChanged();
      await rm(grave, { recursive: true, force: true });
      return true;
    });
  }

  /**
   * Subscribes `handler` to the messages whose topic matches `patterns`, in the durable group
   * `options.group` (default: this handle's), created if needed and bound to exactly these
   * patterns. Runs on consume(): resolve acks, throw retries with backoff. The group keeps what
   * arrives while no subscriber runs, so a restarted subscriber misses nothing.
   */
  async subscribe(patterns: string | readonly string[], handler: Handler<T>, options: SubscribeOptions = {}): Promise<Subscription> {
    this.#ensureOpen('subscribe');
    if (typeof options !== 'object' || options === null) throw invalid('subscribe options', 'an object', options);
    const { group = this.group, ...consumeOptions } = options;
    if (group === null) {
      throw new InvalidOptionError("Cannot subscribe: this handle has no group (group: null); pass { group: 'name' } to subscribe");
    }
    checkGroupName(group);
    const topics = checkPatterns('patterns', typeof patterns === 'string' ? [patterns] : patterns);
    if (typeof handler !== 'function') throw invalid('handler', 'a function', handler);
    let subscription: Subscription;
    if (group === this.group) {
      const own = this.#ownGroup('subscribe').group;
      await withStorageErrors(`bind group ${group}`, () => setPatterns(this.#spool, own, topics, this.#sync));
      subscription = new Subscription(group, topics, this.consume(handler, consumeOptions), null);
    } else {
      // Another group: a handle of its own, with this handle's settings, closed with the subscription.
      const queue = await openQueue<T>(this.dir, { ...this.#options, group, topics, keepUnrouted: false });
      subscription = new Subscription(group, topics, queue.consume(handler, consumeOptions), queue);
    }
    this.#subscriptions.add(subscription);
    void subscription.closed.then(() => this.#subscriptions.delete(subscription));
    return subscription;
  }

  /** The group's dead letters: messages out of attempts, and quarantined files, with reasons. */
  async deadLetters(): Promise<DeadLetter[]> {
    const { group } = this.#ownGroup('list dead letters');
    return withStorageErrors('list the dead letters', () => listDeadLetters(group.dead));
  }

  /**
   * Returns dead letters to the queue with a fresh count of attempts: those with the given ids,
   * or all. Quarantined files (corrupt, too large, bad names) stay: they cannot be delivered.
   * Resolves to the ids requeued.
   */
  async requeueDead(ids?: readonly string[], options: ProgressOptions = {}): Promise<string[]> {
    this.#ensureOpen('requeue');
    if (ids !== undefined && !Array.isArray(ids)) throw invalid('ids', 'an array of message ids', ids);
    const onProgress = checkOnProgress(options);
    const { group } = this.#ownGroup('requeue');
    return withStorageErrors('requeue dead letters', () => this.#requeueDead(group, ids ? new Set(ids) : null, onProgress));
  }

  async #requeueDead(group: GroupPaths, wanted: Set<string> | null, onProgress: ProgressOptions['onProgress']): Promise<string[]> {
    const requeued: string[] = [];
    const letters = (await listDeadLetters(group.dead)).flatMap((letter) => {
      const ready = parseReady(letter.file);
      if (!ready || letter.code === 'corrupt' || letter.code === 'too-large') return [];
      if (wanted && !wanted.has(ready.id)) return [];
      return [{ letter, ready }];
    });
    onProgress?.(0, letters.length);
    for (const [i, { letter, ready }] of letters.entries()) {
      if (i > 0) onProgress?.(i, letters.length);
      const now = Date.now(); // per letter: a long listing must not make the target bucket old
      const bucket = join(group.ready, formatBucket(ready.priority, now, this.#spool.bucketMs));
      await ensureDir(bucket, group.ready, this.#sync, this.#spool.modes);
      const from = join(group.dead, letter.file);
      try {
        await rename(from, join(bucket, formatReady({ ...ready, visibleAt: now, attempt: 1 })));
      } catch (error) {
        if (isErrno(error, 'ENOENT')) continue; // requeued by another process meanwhile
        throw error;
      }
      await removeReason(from);
      requeued.push(ready.id);
    }
    if (requeued.length > 0) await this.#commit.commit({ dirs: [], doorbells: [group.doorbell] });
    onProgress?.(letters.length, letters.length);
    return requeued;
  }

  /** Removes every waiting message (ready and delayed) of this group. Resolves to the count. */
  async purge(options: ProgressOptions = {}): Promise<number> {
    this.#ensureOpen('purge');
    const onProgress = checkOnProgress(options);
    const { group } = this.#ownGroup('purge');
    return withStorageErrors('purge', () => this.#purge(group, onProgress));
  }

  async #purge(group: GroupPaths, onProgress: ProgressOptions['onProgress']): Promise<number> {
    let removed = 0;
    let done = 0;
    const buckets = await listBuckets(group.ready, null);
    // The total costs a listing of every bucket first, so only when someone shows it.
    let total = 0;
    if (onProgress) for (const b of buckets) total += (await readdir(join(group.ready, b)).catch(() => [])).length;
    onProgress?.(0, total);
    for (const bucket of buckets) {
      const dir = join(group.ready, bucket);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        try {
          await unlink(join(dir, name));
          const ready = parseReady(name);
          removed += ready ? unsettled(ready) : 1; // an envelope removes the messages it held
        } catch (error) {
          if (!isErrno(error, 'ENOENT', 'EISDIR', 'EPERM')) throw error;
        }
        done++;
        onProgress?.(done, Math.max(total, done)); // pushes meanwhile may add to the total
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
      await Promise.all([...this.#subscriptions].map((s) => s.close()));
      await Promise.all([...this.#consumers].map((c) => c.close()));
      await Promise.allSettled([...this.#inFlight]);
      this.#ringer.flush();
      await this.#own?.receiver.close();
    })();
    return this.#closing;
  }

  #ensureOpen(action: string): void {
    if (this.#closing) throw new ClosedError(`Cannot ${action}: the queue is closed; open it again`);
  }

  get #sync(): boolean {
    return this.#options.durability === 'fsync';
  }

  #ownGroup(action: string): { group: GroupPaths; receiver: Receiver<T> } {
    if (this.#own) return this.#own;
    throw new InvalidOptionError(`Cannot ${action}: this handle was opened with group: null (publish only); open it with a group`);
  }

  async #existingGroup(name: string): Promise<GroupPaths> {
    checkGroupName(name);
    if (!(await this.#spool.hasGroup(name))) {
      throw new GroupNotFoundError(
        `There is no group ${name} in the spool at ${this.dir}; open it with openQueue(dir, { group: '${name}' }) first`,
      );
    }
    return this.#spool.group(name);
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
  if (resolved.keepUnrouted) await openGroup(spool, UNROUTED_GROUP, undefined, sync);
  if (resolved.group === null) return new Queue(spool, null, resolved);
  const group = await openGroup(spool, resolved.group, resolved.topics, sync);
  const leases = new Leases(group, {
    leaseMs: resolved.leaseMs,
    maxAttempts: resolved.maxAttempts,
    maxMessageBytes: resolved.maxMessageBytes,
    bucketMs: spool.bucketMs,
    sync,
    modes: spool.modes,
    tmp: spool.tmp,
  });
  try {
    await recover(spool, leases);
  } catch (error) {
    throw openError(spool.root, resolved.group, error);
  }
  return new Queue(spool, { group, leases }, resolved);
}

/**
 * Creates the group if needed, bound to `topics` (a new group without them: every message, but
 * 'unrouted' none), or makes an existing group's bindings exactly `topics` when given.
 */
async function openGroup(spool: Spool, name: string, topics: readonly string[] | undefined, sync: boolean): Promise<GroupPaths> {
  try {
    const initial = topics ?? (name === UNROUTED_GROUP ? [] : [MATCH_ALL]);
    const created = await spool.ensureGroup(name, sync, initial);
    if (!created && topics !== undefined) await setPatterns(spool, spool.group(name), topics, sync);
    return spool.group(name);
  } catch (error) {
    throw openError(spool.root, name, error);
  }
}

function openError(root: string, group: string, error: unknown): unknown {
  if (error instanceof SpoolqError || (error as NodeJS.ErrnoException).syscall === undefined) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  return new SpoolPathError(`Cannot open group ${group} of the spool at ${root}: ${code} (${(error as Error).message}); ${ioHint(code)}`, {
    cause: error,
  });
}

/** Counts of one group at `now`, in messages (an envelope counts the records it still holds). */
async function groupStats(group: GroupPaths, now: number): Promise<Omit<QueueStats, 'unrouted'>> {
  const stats = { ready: 0, leased: 0, delayed: 0, dead: 0, oldestReadyAgeMs: null as number | null };
  let oldest = Number.POSITIVE_INFINITY;
  for (const bucket of await listBuckets(group.ready, null)) {
    for (const name of await readdir(join(group.ready, bucket)).catch(() => [] as string[])) {
      const ready = parseReady(name);
      if (!ready) continue;
      if (ready.visibleAt <= now) {
        stats.ready += unsettled(ready);
        oldest = Math.min(oldest, ready.visibleAt);
      } else {
        stats.delayed += unsettled(ready);
      }
    }
  }
  const leasedNames = await readdir(group.leased);
  const leftovers = leftoverNames(leasedNames); // their records are counted in another name
  for (const name of leasedNames) {
    if (name.startsWith('.') || leftovers.has(name)) continue;
    const leased = parseLeased(name);
    const ready = leased && parseReady(leased.ready);
    const acked = leased && ready && ready.count > 1 ? readAcks(group.root, leased.token, ready.count) : 0n;
    stats.leased += ready ? unsettled({ ...ready, settled: ready.settled | acked }) : 1;
  }
  stats.dead = (await readdir(group.dead)).filter((n) => !n.endsWith('.why') && !n.startsWith('.')).length;
  if (stats.ready > 0) stats.oldestReadyAgeMs = Math.max(0, now - oldest);
  return stats;
}

async function withStorageErrors<R>(action: string, fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (error) {
    throw storageError(error, action);
  }
}

function checkOnProgress(options: ProgressOptions): ProgressOptions['onProgress'] {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object', options);
  const { onProgress } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid('onProgress', 'a function', onProgress);
  return onProgress;
}
