/**
 * Publishing, in the syscall order that is the durability contract (design.md, "Publish"):
 *
 *   0. gather: the messages of every push() and pushMany() called while the previous round was
 *      being written form the next round (no delay when idle: a lone push goes at once), and
 *      consecutive ones that share priority, topic and delay go into one envelope file
 *      (up to 128 messages and 1 MiB): one inode, one fdatasync and one rename for all of them
 *   1. route: the groups whose bindings match each message's topic (routing.ts), read once
 *      for the round; messages no group takes are not written (or go to 'unrouted')
 *   2. open tmp/<id> O_EXCL, write every byte, fdatasync (durability 'fsync'), close; then link
 *      into groups/<g>/ready/<P>-<bucket>/<name> for each group but the last, and rename into the last
 *      (a missing bucket is created; ready/ is then fsynced in step 4 too). An envelope of more
 *      than `claimBatch` messages has a name per part in each group, all links of one inode.
 *   3. unlink tmp/<id> if its last group was deleted meanwhile
 *   4. fsync every directory touched: group-committed with concurrent publishes
 *   5. ring the doorbells (durable: while those fsyncs run; fast: a ring within 1 ms of the last
 *      is folded into one, doorbell.ts), then resolve
 *
 * Nothing is visible before step 2, and a file is complete before it is visible. A failure
 * before visibility rejects with EPUBLISH and removes what was written; a failed directory
 * fsync rejects with EDURABILITY and stops the queue (see group-commit.ts).
 */
import { linkSync, renameSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { encodePayload } from './codec.js';
import { forEachLimit } from './concurrency.js';
import { ensureDir, NO_LINK_CODES, writeNewFile } from './durable-fs.js';
import { ioHint, isErrno, MessageTooLargeError, PublishError, SpoolqError } from './errors.js';
import type { GroupCommit } from './group-commit.js';
import { entry, type GroupPaths, type Spool } from './layout.js';
import { attributesJson, encodeRecords, MAX_ATTRIBUTE_BYTES, MAX_ENVELOPE_BYTES, type OutgoingRecord } from './message-file.js';
import {
  allRecords,
  DEFAULT_PRIORITY,
  formatBucket,
  formatReady,
  type IdGenerator,
  MAX_ENVELOPE_RECORDS,
  MAX_PRIORITY,
  recordRange,
} from './names.js';
import { checkInteger, invalid, type ResolvedOptions, UNROUTED_GROUP } from './options.js';
import { type Route, readRoutes } from './routing.js';
import { SpareBuffers } from './spare-buffers.js';
import { checkTopic } from './topics.js';

export interface PushOptions {
  /** 0 is delivered first, 9 last. @default 4 */
  priority?: number;
  /** Not delivered before this many milliseconds have passed. @default 0 */
  delayMs?: number;
  /** String key/value pairs delivered with the message as `m.headers`. */
  headers?: Record<string, string>;
  /**
   * Routes the message to the groups bound to a matching pattern ('orders.created' matches
   * 'orders.*' and 'orders.#'); without one it goes to the groups bound to '#'.
   */
  topic?: string;
}

const PUSH_OPTIONS = ['priority', 'delayMs', 'headers', 'topic'];

/** The options of one push() or pushMany(), checked once for all its messages. */
interface CheckedOptions {
  priority: number;
  delayMs: number;
  topic: string | undefined;
  /** The JSON of the attributes other than id and enqueuedAt (see attributesJson). */
  extraAttrs: string;
  extraAttrsBytes: number;
}

/**
 * The messages of one push() or pushMany(), waiting for their round: encoded back to back in
 * one buffer, so that an envelope of consecutive ones is a view of it.
 */
interface Batch {
  ids: string[];
  file: Buffer;
  /** Where each record starts in `file`, then where the last one ends. */
  offsets: number[];
  visibleAt: number[];
  options: CheckedOptions;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Consecutive messages of a round that share one file. */
interface Run {
  options: CheckedOptions;
  groups: GroupPaths[];
  ids: string[];
  bytes: number;
  visibleAt: number;
  /** Their records: ranges [from, to) of batches' records. */
  pieces: Array<{ batch: Batch; from: number; to: number }>;
}

/** One file to publish: a message file, or an envelope of several records. */
interface Outgoing {
  file: Buffer;
  tmp: string;
  bucket: string;
  /** Its names in each group: one, or one per part of an envelope (see #names). */
  names: string[];
}

/** How many files one publish writes or links at once: bounds open descriptors. */
const IO_CONCURRENCY = 32;

type Placed = 'placed' | 'new-bucket' | 'gone';

export class Publisher {
  /** Pushes waiting for the next round. */
  #pending: Batch[] = [];
  #running = false;
  /** Reused buffers for encoding large pushes (spare-buffers.ts). */
  #spares = new SpareBuffers();
  /** Set once a link failed for want of hard links: every further fan-out copies. */
  #noLinks = false;
  /** Messages that matched no group (dropped, or kept in the unrouted group). */
  unrouted = 0;

  constructor(
    private readonly spool: Spool,
    private readonly options: ResolvedOptions,
    private readonly commit: GroupCommit,
    private readonly ids: IdGenerator,
  ) {}

  /** Publishes every item of `data`, all with `options`, as one commit; resolves to their ids, in order. */
  async publish(data: readonly unknown[], options?: PushOptions): Promise<string[]> {
    const checked = options === undefined ? DEFAULT_OPTIONS : checkOptions(options);
    const enqueuedAt = this.ids.now(); // one time for the messages of one call: they are enqueued together
    const records = data.map((d) => this.#prepare(d, checked, enqueuedAt));
    if (this.commit.failure) throw this.commit.failure;
    if (records.length === 0) return [];
    // Encoded now, while the data is the caller's to give: a buffer may be reused once push()
    // is called. A large file goes into a spare buffer, given back after its round (#run).
    const { file, offsets } = encodeRecords(records, this.#spares.alloc);
    const ids = records.map((r) => r.id);
    const visibleAt = records.map((r) => r.visibleAt);
    await new Promise<void>((resolve, reject) => {
      this.#pending.push({ ids, file, offsets, visibleAt, options: checked, resolve, reject });
      if (!this.#running) void this.#run();
    });
    return ids;
  }

  /**
   * Rounds, one after another: each writes and links what was pushed while the one before was
   * written and linked, so the files of a producer become visible in push order (strict FIFO
   * per producer). A round's directory fsyncs run in the group commit while the next round is
   * written. A failure fails every push of its round.
   */
  async #run(): Promise<void> {
    this.#running = true;
    // A microtask's wait, no more: the pushes of one synchronous burst (Promise.all of pushes)
    // all make the first round.
    await Promise.resolve();
    while (this.#pending.length > 0) {
      const round = this.#pending;
      this.#pending = [];
      try {
        if (this.commit.failure) throw this.commit.failure; // fail-stop: a commit before failed
        const placed = await this.#writeAndLink(round);
        this.commit.commit({ dirs: placed.touched, doorbells: placed.doorbells }).then(
          () => {
            for (const r of round) r.resolve();
          },
          (error) => {
            for (const r of round) r.reject(error);
          },
        );
      } catch (error) {
        for (const r of round) r.reject(error);
      } finally {
        // Every write, link and copy of the round is done (all awaited, failed or not: forEachLimit
        // and allSettled wait for every call), and the commit reads names, not bytes: the buffers
        // may be reused.
        for (const r of round) this.#spares.release(r.file);
      }
    }
    this.#running = false;
  }

  /** The files of a round: runs of messages that can share an envelope, in push order. */
  #envelopes(round: readonly Batch[], routes: readonly Route[]): Array<{ p: Outgoing; groups: GroupPaths[] }> {
    const runs: Run[] = [];
    for (const batch of round) {
      const { options } = batch;
      const groups = this.#route(routes, options.topic, batch.ids.length);
      if (groups.length === 0) continue;
      for (let i = 0; i < batch.ids.length; i++) {
        const size = (batch.offsets[i + 1] as number) - (batch.offsets[i] as number);
        const visibleAt = batch.visibleAt[i] as number;
        const run = runs.at(-1);
        const joins =
          this.options.envelopes &&
          run !== undefined &&
          run.options.priority === options.priority &&
          run.options.topic === options.topic && // and so the same groups
          // The envelope is visible at the latest of its messages' times, so none is early; with
          // the same delay that is never later than a later push of the same delay (strict FIFO).
          run.options.delayMs === options.delayMs &&
          run.ids.length < MAX_ENVELOPE_RECORDS &&
          run.bytes + size <= MAX_ENVELOPE_BYTES;
        if (!joins) {
          runs.push({
            options,
            groups,
            ids: [batch.ids[i] as string],
            bytes: size,
            visibleAt,
            pieces: [{ batch, from: i, to: i + 1 }],
          });
          continue;
        }
        run.ids.push(batch.ids[i] as string);
        run.bytes += size;
        run.visibleAt = Math.max(run.visibleAt, visibleAt);
        const piece = run.pieces.at(-1);
        if (piece?.batch === batch && piece.to === i) piece.to++;
        else run.pieces.push({ batch, from: i, to: i + 1 });
      }
    }
    return runs.map((run) => {
      const { priority } = run.options;
      const files = run.pieces.map(({ batch, from, to }) => batch.file.subarray(batch.offsets[from], batch.offsets[to]));
      return {
        p: {
          file: files.length === 1 ? (files[0] as Buffer) : Buffer.concat(files),
          tmp: entry(this.spool.tmp, run.ids[0] as string),
          bucket: formatBucket(priority, run.visibleAt, this.spool.bucketMs),
          names: this.#names(run),
        },
        groups: run.groups,
      };
    });
  }

  /**
   * The names of a file in a group. An envelope of more than `claimBatch` messages gets one name
   * per part of up to `claimBatch` (hard links of one inode): each part's name has the bits of
   * the other parts' records already set in its settled bitmap, so consumers claim, ack and
   * reap the parts apart, and a slow consumer holds `claimBatch` messages, not 128. A part is
   * named after its first message, so the parts sort in push order. Without hard links the
   * parts would be copies: the envelope keeps one name.
   */
  #names(run: Run): string[] {
    const { priority } = run.options;
    const { visibleAt } = run;
    const count = run.ids.length;
    const size = this.#noLinks ? count : this.options.claimBatch;
    const names: string[] = [];
    for (let from = 0; from < count; from += size) {
      const settled = count === 1 ? 0n : allRecords(count) & ~recordRange(from, Math.min(from + size, count));
      names.push(formatReady({ priority, visibleAt, id: run.ids[from] as string, attempt: 1, count, settled }));
    }
    return names;
  }

  async #writeAndLink(round: readonly Batch[]): Promise<{ touched: Set<string>; doorbells: string[] }> {
    const sync = this.options.durability === 'fsync';
    let routes: Route[];
    try {
      routes = await readRoutes(this.spool);
    } catch (error) {
      throw publishError('reading the groups and their bindings', error);
    }
    const routed = this.#envelopes(round, routes);

    const written: Outgoing[] = [];
    try {
      await forEachLimit(routed, IO_CONCURRENCY, async ({ p }) => {
        await writeNewFile(p.tmp, p.file, sync, this.spool.modes);
        written.push(p);
      });
    } catch (error) {
      await Promise.all(written.map((p) => unlink(p.tmp).catch(() => {})));
      throw publishError('writing the message file', error);
    }

    const touched = new Set<string>();
    const doorbells = new Set<string>();
    const visible: string[] = [];
    const copies: string[] = [];
    try {
      // File by file, in push order: a consumer never sees a producer's later message without
      // the earlier ones (strict FIFO per producer). Writes and syncs above stay concurrent.
      for (const { p, groups } of routed) {
        // Every group gets every name of the file (its parts, see #names). All are hard links
        // but the last name of the last group, which takes the tmp file itself by rename: one
        // inode. Groups go at once (order matters only within a group); a group's names go in
        // order, so its consumers see a file's parts in push order too.
        const lastGroup = groups.length - 1;
        // Each name is recorded as soon as it is placed, so that a failure after it undoes it.
        const record = (group: GroupPaths, name: string, placed: Placed) => {
          if (placed === 'gone') return; // the group was deleted meanwhile
          const dir = entry(group.ready, p.bucket);
          visible.push(entry(dir, name));
          touched.add(dir);
          doorbells.add(group.doorbell);
          // A bucket made just now (by us or by another process that may not have synced yet):
          // its entry in ready/ must be durable too. A failure here is a durability failure of
          // the commit, like any other directory fsync.
          if (placed === 'new-bucket') touched.add(group.ready);
        };
        if (lastGroup > 0 || p.names.length > 1) {
          const outcomes = await Promise.allSettled(
            groups.map(async (group, g) => {
              for (const [n, name] of (g === lastGroup ? p.names.slice(0, -1) : p.names).entries()) {
                record(group, name, await this.#link(p, group, name, `${g}.${n}`, copies, sync));
              }
            }),
          );
          const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
          if (failed) throw failed.reason;
        }
        // Every link is made: the tmp file itself may go.
        const name = p.names.at(-1) as string;
        const last = groups[lastGroup] as GroupPaths;
        const placed = await this.#placeInto(p.tmp, p.bucket, name, last, true);
        record(last, name, placed);
        if (placed === 'gone') await unlink(p.tmp).catch(() => {}); // its last group was deleted meanwhile: not renamed anywhere
      }
    } catch (error) {
      // Undo what became visible. A name already claimed by a consumer is gone (ENOENT):
      // that delivery stands, which at-least-once allows.
      await Promise.all(visible.map((v) => unlink(v).catch(() => {})));
      await Promise.all([...routed.map(({ p }) => p.tmp), ...copies].map((f) => unlink(f).catch(() => {})));
      throw publishError('linking the message into ready/', error, true);
    }
    return { touched, doorbells: [...doorbells] };
  }

  /**
   * A hard link of the message into `group`; without hard links (EPERM on FAT, …), a copy of
   * its own, written and synced before it is renamed in.
   */
  async #link(p: Outgoing, group: GroupPaths, name: string, tag: string, copies: string[], sync: boolean): Promise<Placed> {
    if (!this.#noLinks) {
      try {
        return await this.#placeInto(p.tmp, p.bucket, name, group, false);
      } catch (error) {
        if (!isErrno(error, ...NO_LINK_CODES)) throw error;
        this.#noLinks = true;
      }
    }
    const copy = await this.#copy(p, tag, copies, sync);
    return this.#placeInto(copy, p.bucket, name, group, true);
  }

  #placeInto(source: string, bucket: string, name: string, group: GroupPaths, move: boolean): Promise<Placed> {
    const dir = entry(group.ready, bucket);
    return this.#place(source, entry(dir, name), dir, group.ready, move);
  }

  /** The groups `count` messages with `topic` go to; counts them as unrouted when none matches. */
  #route(routes: readonly Route[], topic: string | undefined, count: number): GroupPaths[] {
    const groups = routes.filter((r) => r.accepts(topic)).map((r) => r.group);
    if (groups.length > 0) return groups;
    this.unrouted += count;
    return this.options.keepUnrouted ? [this.spool.group(UNROUTED_GROUP)] : [];
  }

  /** A copy of the file for one of its names (`tag`), complete (and synced) before it is renamed in. */
  async #copy(p: Outgoing, tag: string, copies: string[], sync: boolean): Promise<string> {
    const copy = `${p.tmp}.${tag}`;
    await writeNewFile(copy, p.file, sync, this.spool.modes);
    copies.push(copy);
    return copy;
  }

  #prepare(data: unknown, options: CheckedOptions, enqueuedAt: number): OutgoingRecord & { id: string; visibleAt: number } {
    const payload = encodePayload(this.options.codec, data);
    if (payload.length > this.options.maxMessageBytes) {
      throw new MessageTooLargeError(
        `The message is ${payload.length} bytes, over maxMessageBytes (${this.options.maxMessageBytes}); split it, or raise maxMessageBytes for producers and consumers`,
      );
    }
    const id = this.ids.next();
    const attrs = attributesJson(id, enqueuedAt, options.extraAttrs);
    // All but the extra attributes are ASCII, one byte a character.
    const attrsBytes = attrs.length - options.extraAttrs.length + options.extraAttrsBytes;
    if (attrsBytes > MAX_ATTRIBUTE_BYTES) {
      throw invalid(
        'headers',
        `at most ${MAX_ATTRIBUTE_BYTES} bytes once encoded (${attrsBytes} here); put large data in the payload`,
        '{…}',
      );
    }
    return { codec: this.options.codec, attrs, attrsBytes, payload, id, visibleAt: enqueuedAt + options.delayMs };
  }

  /**
   * Puts the tmp file at `target`, creating the bucket if it is missing. Resolves to 'placed',
   * to 'new-bucket' when the bucket had to be created, or to 'gone' if the group vanished
   * meanwhile (deleted): a publish goes to the groups that exist.
   */
  async #place(tmp: string, target: string, dir: string, readyDir: string, move: boolean): Promise<Placed> {
    let created = false;
    for (let attempt = 0; ; attempt++) {
      try {
        if (move) renameSync(tmp, target);
        else linkSync(tmp, target); // synchronous: one metadata change (see durable-fs.ts)
        return created ? 'new-bucket' : 'placed';
      } catch (error) {
        if (!isErrno(error, 'ENOENT') || attempt >= 3) throw error;
      }
      // The bucket is missing (new, or removed as drained by a consumer): create it, retry.
      // Its parent is fsynced by the commit, with the bucket itself.
      try {
        await ensureDir(dir, readyDir, false, this.spool.modes);
        created = true;
      } catch (error) {
        if (isErrno(error, 'ENOENT')) return 'gone';
        throw error;
      }
    }
  }
}

function checkOptions(options: PushOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('push options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!PUSH_OPTIONS.includes(key)) {
      throw invalid(key, `one of the push options ${PUSH_OPTIONS.join(', ')}`, (options as Record<string, unknown>)[key]);
    }
  }
  const priority = checkInteger('priority', options.priority ?? DEFAULT_PRIORITY, 0, MAX_PRIORITY);
  const delayMs = checkInteger('delayMs', options.delayMs ?? 0, 0, 10 * 365 * 24 * 3600 * 1000);
  const headers = checkHeaders(options.headers);
  const topic = options.topic === undefined ? undefined : checkTopic(options.topic);
  let extraAttrs = '';
  if (headers !== undefined) extraAttrs += `,"headers":${JSON.stringify(headers)}`;
  if (topic !== undefined) extraAttrs += `,"topic":${JSON.stringify(topic)}`;
  return { priority, delayMs, topic, extraAttrs, extraAttrsBytes: Buffer.byteLength(extraAttrs) };
}

/** The options of a push() called without any: checked once. */
const DEFAULT_OPTIONS: CheckedOptions = Object.freeze(checkOptions({}));

function checkHeaders(headers: unknown): Record<string, string> | undefined {
  if (headers === undefined) return undefined;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw invalid('headers', 'an object of string values', headers);
  }
  for (const [key, value] of Object.entries(headers)) {
    if (typeof value !== 'string') throw invalid(`headers.${key}`, 'a string', value);
  }
  return headers as Record<string, string>;
}

function publishError(step: string, error: unknown, afterVisible = false): SpoolqError {
  if (error instanceof SpoolqError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  const what = afterVisible
    ? 'The message was not published (the copies that had become visible were removed; a consumer may already have received one, as at-least-once delivery allows)'
    : 'Nothing was published';
  return new PublishError(
    `${what}: ${code} while ${step} (${(error as Error).message}); ${ioHint(code)}. Pushing the same data again is safe`,
    { cause: error },
  );
}
