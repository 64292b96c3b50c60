/**
 * The consumer's bounded in-memory index of the next due messages of a group.
 *
 * A refill lists the bucket directories (few), then lists due buckets in delivery order
 * (priority, then time), keeping only the `window` smallest names. Listing is O(n) and ext4
 * directories never shrink, so buckets bound each listing, drained old buckets are removed,
 * and the index never holds more than `window` names however large the backlog is.
 */
import { opendirSync, readdirSync, statSync } from 'node:fs';
import { readdir, rmdir, statfs } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isErrno } from './errors.js';
import { type BucketName, isReadyName, parseBucket, parseReady, type ReadyName, timeHex, visibleBy } from './names.js';

export interface IndexEntry {
  /** The bucket directory holding the message. */
  readonly dir: string;
  /** The ready name (sorts in delivery order). */
  readonly name: string;
}

export interface ScanResult {
  /** Up to `window` due entries, in delivery order. */
  entries: IndexEntry[];
  /** Earliest time something not yet due becomes due (a delayed message or bucket), or null. */
  nextDueAt: number | null;
  /** Entries that are not spoolq messages or buckets (by name or type): to quarantine. */
  strangers: Array<IndexEntry & { reason: string }>;
}

/**
 * A bucket is old once two bucket widths have passed since it ended: no producer links into it
 * any more (they link into the bucket of their current time), so a drained one can be removed.
 */
export function isOldBucket(bucket: number, bucketMs: number, now: number): boolean {
  return (bucket + 3) * bucketMs < now;
}

const byName = (a: IndexEntry, b: IndexEntry): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Lists the due messages of `readyDir`, keeping the `window` first in delivery order. */
export async function scanReady(readyDir: string, bucketMs: number, window: number, now: number): Promise<ScanResult> {
  const result: ScanResult = { entries: [], nextDueAt: null, strangers: [] };
  const dueAt = (t: number) => {
    if (result.nextDueAt === null || t < result.nextDueAt) result.nextDueAt = t;
  };
  for (const bucketName of await listBuckets(readyDir, result)) {
    const bucket = parseBucket(bucketName) as BucketName;
    const start = bucket.bucket * bucketMs;
    if (start > now) {
      dueAt(start);
      continue;
    }
    if (result.entries.length >= window) continue; // later due buckets sort after the window
    const dir = join(readyDir, bucketName);
    const listing = await listBucket(dir, window, now, result, dueAt);
    if (listing === null) continue; // removed meanwhile
    if (listing.seen === 0 && isOldBucket(bucket.bucket, bucketMs, now)) {
      // Drained and old: remove it so the directory does not grow forever. A publisher or
      // nack racing with this gets ENOENT and recreates the bucket.
      await rmdir(dir).catch(() => {});
    }
    result.entries.push(...listing.selected);
    if (result.entries.length > window) result.entries.length = window;
  }
  // Strict FIFO per producer across a bucket boundary: while this scan ran, a producer may have
  // linked message 1 into an older bucket (after that bucket was listed, or into a bucket made
  // after the bucket list was read) and message 2 into a newer one before it was listed. A
  // producer links in push order, so listing every older bucket of that priority again, after
  // the newest one that contributed, catches message 1. Older buckets were taken whole into a
  // window that was not full, and new ones are new: this costs less than one window.
  const newest = new Map<number, number>(); // priority → newest bucket that contributed
  for (const entry of result.entries) {
    const bucket = parseBucket(basename(entry.dir));
    if (bucket && bucket.bucket > (newest.get(bucket.priority) ?? -1)) newest.set(bucket.priority, bucket.bucket);
  }
  const again: IndexEntry[] = [];
  if (newest.size > 0) {
    for (const bucketName of await listBuckets(readyDir, null)) {
      const bucket = parseBucket(bucketName) as BucketName;
      if (!(bucket.bucket < (newest.get(bucket.priority) ?? -1))) continue;
      again.push(...((await listBucket(join(readyDir, bucketName), window, now, null, () => {}))?.selected ?? []));
    }
  }
  if (again.length > 0) {
    const known = new Set(result.entries.map((e) => e.name));
    result.entries.push(...again.filter((e) => !known.has(e.name)));
    result.entries = result.entries.sort(byName).slice(0, window);
  }
  return result;
}

/**
 * The bucket directories of `readyDir`, sorted. Anything else in it is reported as a stranger:
 * a bad name, or a bucket name on something that is not a real directory. A symlink is never
 * followed: listing and claiming through one would move files from outside the spool.
 */
export async function listBuckets(readyDir: string, result: ScanResult | null): Promise<string[]> {
  const buckets: string[] = [];
  const small = (await listingMode(readyDir, readyDir)) === 'sync';
  for (const entry of small ? readdirSync(readyDir, { withFileTypes: true }) : await readdir(readyDir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    if (!parseBucket(entry.name)) {
      result?.strangers.push({ dir: readyDir, name: entry.name, reason: `not a spoolq bucket name: ${JSON.stringify(entry.name)}` });
    } else if (!entry.isDirectory()) {
      result?.strangers.push({
        dir: readyDir,
        name: entry.name,
        reason: 'a bucket name on something that is not a directory (a symlink is never followed)',
      });
    } else {
      buckets.push(entry.name);
    }
  }
  return buckets.sort();
}

/**
 * A directory up to this size (~1,000 names on ext4) is read by synchronous calls: a few tens of
 * µs on the JS thread, where a trip through libuv's pool costs 50–100 µs (durable-fs.ts), and a
 * consumer woken by a doorbell lists ready/ and a bucket before it can claim.
 */
const SYNC_MAX_DIR_BYTES = 64 * 1024;
const SIZE_IN_BYTES = new Set([0xef53 /* ext2/3/4 */, 0x58465342 /* xfs */, 0x9123683e /* btrfs */, 0x01021994 /* tmpfs */]);

/** Whether directory sizes are in bytes on the file system of `dir`, by ready directory. */
const sizeInBytes = new Map<string, boolean>();

/**
 * How to list `dir` (ready/ itself, or one of its buckets), by its size: 'sync' in one
 * readdirSync(), else 'stream' (streamNames). Where a directory's size is not its bytes (ZFS
 * reports the entry count, some FUSE or network file systems 0), every listing is streamed.
 */
async function listingMode(dir: string, readyDir: string): Promise<'sync' | 'stream'> {
  let known = sizeInBytes.get(readyDir);
  if (known === undefined) {
    known = SIZE_IN_BYTES.has((await statfs(dir)).type);
    if (sizeInBytes.size >= 1_000) sizeInBytes.clear();
    sizeInBytes.set(readyDir, known);
  }
  if (!known) return 'stream';
  const { size } = statSync(dir);
  return size <= SYNC_MAX_DIR_BYTES ? 'sync' : 'stream';
}

/** A streamed listing reads this many names per synchronous step, then lets the event loop run. */
const STREAM_BATCH = 1024;

/**
 * Lists one bucket directory, keeping its `window` smallest due names (sorted), and reporting
 * strangers and not-yet-due names through `result` and `dueAt`. Null if the bucket is gone.
 *
 * Every name of the bucket passes through here, so nothing is allocated per name but the name
 * itself: the checks are a regex test and a text comparison of the time field, and the window
 * is kept as strings until it is cut.
 */
async function listBucket(
  dir: string,
  window: number,
  now: number,
  result: ScanResult | null,
  dueAt: (t: number) => void,
): Promise<{ selected: IndexEntry[]; seen: number } | null> {
  let selected: string[] = [];
  let seen = 0;
  const nowHex = timeHex(now);
  const take = (name: string) => {
    seen++;
    if (name.startsWith('.')) return;
    if (!isReadyName(name)) {
      result?.strangers.push({ dir, name, reason: `not a spoolq message name: ${JSON.stringify(name)}` });
    } else if (!visibleBy(name, nowHex)) {
      dueAt((parseReady(name) as ReadyName).visibleAt);
    } else {
      selected.push(name);
      // Keep memory bounded in a large bucket: sort and cut now and then.
      if (selected.length >= 2 * window) selected = selected.sort().slice(0, window);
    }
  };
  try {
    const mode = await listingMode(dir, dirname(dir));
    if (mode === 'sync') for (const name of readdirSync(dir)) take(name);
    else await streamNames(dir, take);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return null;
    throw error;
  }
  // A plain sort of names is byte order: they are ASCII.
  return {
    selected: selected
      .sort()
      .slice(0, window)
      .map((name) => ({ dir, name })),
    seen,
  };
}

/**
 * Passes every name of a directory too large for one readdirSync() to `take`: STREAM_BATCH names
 * per synchronous step, with the event loop let in between, so memory stays bounded however
 * large a bucket grows. Measured on 75,000 (ext4) and 230,000 (tmpfs) names, against one
 * readdir() through the pool it is as fast or faster and peaks 10–50 MB lower (readdir builds the
 * whole listing at once), and against iterating opendir() (a promise per name) 2–3× faster
 * (bench/README.md, 2026-11-27).
 */
async function streamNames(dir: string, take: (name: string) => void): Promise<void> {
  const handle = opendirSync(dir, { bufferSize: STREAM_BATCH });
  try {
    for (;;) {
      for (let i = 0; i < STREAM_BATCH; i++) {
        const entry = handle.readSync();
        if (entry === null) return;
        take(entry.name);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    handle.closeSync();
  }
}

/**
 * The window of due names. Taken in order from a cursor; `jump()` moves the cursor to a random
 * place, and taking goes on from there, wrapping around, until every name was taken once.
 */
export class ReadyIndex {
  #entries: Array<IndexEntry | undefined> = [];
  #cursor = 0;
  #size = 0;

  constructor(readonly window: number) {}

  get size(): number {
    return this.#size;
  }

  replace(entries: IndexEntry[]): void {
    if (entries.length > this.window) throw new RangeError('index entries exceed the window');
    this.#entries = entries;
    this.#cursor = 0;
    this.#size = entries.length;
  }

  /** The name shift() would take, left in place. */
  peek(): IndexEntry | undefined {
    if (this.#size === 0) return undefined;
    for (let i = 0; i < this.#entries.length; i++) {
      const entry = this.#entries[(this.#cursor + i) % this.#entries.length];
      if (entry) return entry;
    }
    return undefined;
  }

  /** Takes the name at the cursor (or the next one left after it). */
  shift(): IndexEntry | undefined {
    while (this.#size > 0) {
      if (this.#cursor >= this.#entries.length) this.#cursor = 0;
      const entry = this.#entries[this.#cursor];
      this.#entries[this.#cursor++] = undefined;
      if (entry) {
        this.#size--;
        return entry;
      }
    }
    return undefined;
  }

  /**
   * Moves the cursor to a random place. Consumers that share a spool index the same names in
   * the same order; after losing a claim race, jumping makes them work different regions
   * instead of racing for every name.
   */
  jump(random: () => number = Math.random): void {
    this.#cursor = Math.floor(random() * this.#entries.length);
  }
}
