/**
 * Wake-up signals between processes. Watch events are hints; the directory is the truth.
 *
 * Each group has a small `doorbell/` directory. A producer owns one file in it and, at each
 * commit, renames that file to a fresh name (a durable producer once the commit's directory
 * fsyncs are under way, see group-commit.ts). Consumers watch that directory, never the backlog:
 * the doorbell holds at most one file per live producer, an O(1) path set.
 *
 * The watch layer is fs.watch (one inotify watch on the directory), or chokidar with
 * `usePolling` (network file systems, where inotify sees nothing). chokidar was the watch layer
 * on inotify too, until a measurement: on each event it re-reads the directory and stats its
 * entries before it reports, which made a wake-up 2.3 ms at p50 and 6.7–8.1 ms at p99 where
 * fs.watch took 0.9 and 3.2–3.6 ms (bench/README.md, results of 2026-11-27).
 *
 * Why a fresh name per ring: chokidar drops repeated `change` events on one path within 50 ms
 * with no trailing event, but a directory re-read that finds a name it has not seen always
 * emits `add`, and a ring during a re-read schedules a trailing re-read. `atomic: false` keeps
 * chokidar from folding the rename's unlink+add into a throttled `change`. fs.watch reports
 * every rename.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, watch as fsWatch, type FSWatcher as NodeFSWatcher, renameSync, writeFileSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import type { Modes } from './durable-fs.js';
import { isErrno } from './errors.js';

/**
 * A ring this soon after the previous one of the same doorbell is folded into one ring at the
 * end of that interval: a producer pushing one message after another (~50–150 µs each here)
 * rang once per push, a rename that cost as much as a fifth of the push. A consumer woken by
 * the first ring takes what it finds; what came after is rung for at most this much later.
 * For `durability: 'none'` handles; durable ones ring at every commit (DoorbellRinger's foldMs).
 */
export const RING_INTERVAL_MS = 1;

/**
 * Ringers with a folded ring pending, rung when the process exits (process.exit(), an uncaught
 * exception): a push resolved must not leave its ring undone. A process killed by a signal
 * loses at most its last millisecond of rings; consumers find those messages by their
 * reconciliation scan (`reconcileMs`).
 */
const pendingAtExit = new Set<DoorbellRinger>();
let exitHook = false;

/** Rings doorbells: one file per producer handle and group, renamed per ring. */
export class DoorbellRinger {
  /**
   * @param foldMs rings this soon after the last are folded (RING_INTERVAL_MS); 0 rings every
   *   time. Durable producers use 0: the group commit rings once per round of directory fsyncs,
   *   hundreds of µs apart, while that round's fsyncs run; a folded ring's timer went off in the
   *   middle of the next push's flush instead (bench/README.md, results of 2026-11-27 14:23–15:10).
   */
  constructor(
    private readonly modes: Modes,
    private readonly foldMs = RING_INTERVAL_MS,
  ) {}

  readonly #owner = randomBytes(6).toString('hex');
  #seq = 0;
  readonly #current = new Map<string, string>();
  /** When each doorbell was last rung (performance.now()). */
  readonly #rungAt = new Map<string, number>();
  /** Rings folded into one at the end of the interval, by doorbell. */
  readonly #pending = new Map<string, NodeJS.Timeout>();

  /**
   * Rings the doorbell directory `dir` now, or, within `foldMs` of its last ring, once that
   * interval is over.
   */
  ring(dir: string): void {
    const since = performance.now() - (this.#rungAt.get(dir) ?? Number.NEGATIVE_INFINITY);
    if (since >= this.foldMs) {
      this.#ringNow(dir);
    } else if (!this.#pending.has(dir)) {
      const timer = setTimeout(() => {
        this.#pending.delete(dir);
        if (this.#pending.size === 0) pendingAtExit.delete(this);
        this.#ringNow(dir);
      }, this.foldMs - since);
      this.#pending.set(dir, timer);
      pendingAtExit.add(this);
      if (!exitHook) {
        exitHook = true;
        process.once('exit', () => {
          for (const ringer of pendingAtExit) ringer.flush();
        });
      }
    }
  }

  /** Rings at once what is waiting for the end of its interval (at close). */
  flush(): void {
    for (const [dir, timer] of this.#pending) {
      clearTimeout(timer);
      this.#ringNow(dir);
    }
    this.#pending.clear();
    pendingAtExit.delete(this);
  }

  /**
   * Rings by synchronous calls (one rename, see durable-fs.ts). Failures are ignored: the
   * reconciliation scan covers them.
   */
  #ringNow(dir: string): void {
    this.#rungAt.set(dir, performance.now());
    const next = join(dir, `${this.#owner}-${(this.#seq++).toString(36)}`);
    const current = this.#current.get(dir);
    this.#current.set(dir, next);
    try {
      if (current) {
        try {
          renameSync(current, next);
          return;
        } catch (error) {
          if (!isErrno(error, 'ENOENT')) throw error; // swept while idle: create anew
        }
      }
      writeFileSync(next, '', { mode: this.modes.file, flag: 'wx' });
      if (this.modes.file & 0o070) chmodSync(next, this.modes.file);
    } catch {
      this.#current.delete(dir);
    }
  }
}

/**
 * Removes doorbell files not rung for `maxAgeMs`: those of producers that closed or died. A
 * producer leaves its last file in place at close, so that its last ring is seen; a ring is a
 * rename, which updates the file's ctime (not its mtime). A live producer whose file was swept
 * just creates a new one at its next ring.
 */
export async function sweepDoorbell(dir: string, maxAgeMs: number, now = Date.now()): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    try {
      if (now - (await stat(path)).ctimeMs > maxAgeMs) await unlink(path);
    } catch {
      // renamed or removed by its owner meanwhile: fine
    }
  }
}

export interface WatchOptions {
  usePolling: boolean;
  pollIntervalMs: number;
}

/**
 * Watches one doorbell directory and calls `onRing` for every ring. The watcher does not keep
 * the process alive (`persistent: false`): a waiting consumer holds a timer instead.
 */
export class DoorbellWatcher {
  #watcher: FSWatcher | null = null;
  #raw: NodeFSWatcher | null = null;

  constructor(
    readonly dir: string,
    readonly options: WatchOptions,
  ) {}

  /** Resolves once the watch is in place, so that a scan started after it misses no ring. */
  async start(onRing: () => void): Promise<void> {
    if (!this.options.usePolling) {
      // The inotify watch exists once fs.watch returns. Any event is a ring: a rename in, and
      // the directory's own removal (its group was deleted: the next scan finds out).
      try {
        this.#raw = fsWatch(this.dir, { persistent: false }, () => onRing());
        this.#raw.on('error', () => {}); // e.g. the directory went away: the scans cover it
      } catch {
        // ENOSPC (no inotify watches left) or the like: only latency is lost, the
        // reconciliation scan still finds every message.
      }
      return;
    }
    const watcher = watch(this.dir, {
      persistent: false,
      ignoreInitial: true,
      atomic: false,
      depth: 0,
      usePolling: this.options.usePolling,
      interval: this.options.pollIntervalMs,
      binaryInterval: this.options.pollIntervalMs,
      ignorePermissionErrors: true,
    });
    this.#watcher = watcher;
    watcher.on('add', onRing);
    watcher.on('change', onRing);
    watcher.on('unlinkDir', onRing); // the group was deleted: look, and find out at once
    // A watch error (e.g. ENOSPC: no inotify watches left) only costs latency: the
    // reconciliation scan still finds every message.
    watcher.on('error', () => {});
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    this.#raw?.close();
    this.#raw = null;
    const watcher = this.#watcher;
    this.#watcher = null;
    await watcher?.close();
  }
}
