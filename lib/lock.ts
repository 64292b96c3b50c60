/**
 * Named cross-process locks in a spool, with fencing tokens:
 *
 *   const release = await lock(dir, 'migrate', { staleMs: 10_000 });
 *   try { await work(release.signal, release.token); } finally { await release(); }
 *
 * The lock state is one file name per lock (lock-state.ts): taking, renewing and releasing are
 * each one rename of an exact name, so exactly one contender wins, and a holder that lost the
 * lock can never disturb the next holder. A holder renews its deadline every staleMs/3; when it
 * dies (or is paused, or its event loop is blocked) for staleMs, the next contender takes over
 * with a larger token. A holder learns that it lost the lock from `signal` (aborted with a
 * LockCompromisedError) and from release(), which then rejects with ELOCK_COMPROMISED; the
 * token lets whatever the lock protects refuse a stale holder's late writes.
 *
 * Why not proper-lockfile (design.md names it; dropped for this): its stale takeover is "stat the
 * lock directory, see an old mtime, rmdir it, mkdir it", which is not atomic. A contender paused
 * between its check and its rmdir removes the fresh lock another contender made meanwhile, and
 * both hold the lock (its issue #121, open). Reproduced on this project's machines: two processes
 * started together on a stale lock both acquired it in 12 of 100 rounds, and in 64 of 80 with a
 * 50 ms pause injected before its rmdir (through its `fs` option); neither noticed before its
 * first mtime update. It has no fencing token, and by default it throws from a timer when a lock
 * is compromised, which crashes the process. No option fixes the takeover (it is a remove and a
 * create, never one atomic step), so this module does not build on it.
 *
 * Not reentrant: a second lock() of a name this process holds waits like any other contender.
 */
import { InvalidNameError, InvalidOptionError, LockCompromisedError, LockTimeoutError, storageError } from './errors.js';
import { openSpool } from './layout.js';
import { isTakeable, type LockEntry, LockState } from './lock-state.js';
import { checkInteger, GROUP_NAME, invalid, MAX_TIMER_MS } from './options.js';

export interface LockOptions {
  /**
   * How long a lock stays held after its holder's last renewal: a holder that died (or was
   * paused) frees it for others after at most this long. The holder renews every staleMs/3.
   * At least 1000. @default 10000
   */
  staleMs?: number;
  /** How long lock() waits for a held lock; 0 tries once. Then ELOCK_TIMEOUT. @default Infinity */
  timeoutMs?: number;
  /** How often a waiting lock() looks again (±50 % jitter, so waiters do not move in step). @default 100 */
  retryMs?: number;
  /** Aborting cancels the wait: lock() rejects with `signal.reason`. It does not affect a held lock. */
  signal?: AbortSignal;
}

/**
 * A held lock. Calling it releases it, as does `release()`. Releasing twice returns the same
 * promise. `release()` rejects with ELOCK_COMPROMISED if the lock was lost (nothing is changed
 * then: the next holder keeps it).
 */
export interface LockHandle {
  (): Promise<void>;
  release(): Promise<void>;
  /** The fencing token: larger than the token of every earlier holder of this name. */
  readonly token: number;
  /** Aborts (reason: a LockCompromisedError) when the lock is lost while held. */
  readonly signal: AbortSignal;
}

const LOCK_DEFAULTS = Object.freeze({ staleMs: 10_000, timeoutMs: Number.POSITIVE_INFINITY, retryMs: 100 });
const MIN_STALE_MS = 1_000;
const KNOWN_OPTIONS = ['staleMs', 'timeoutMs', 'retryMs', 'signal'];
/** The rule of group names (options.ts): lock names become directory names too. */
/** Lock names follow the rule of group names: one safe path component. */
const LOCK_NAME = GROUP_NAME;

interface ResolvedLockOptions {
  readonly staleMs: number;
  readonly timeoutMs: number;
  readonly retryMs: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Takes the lock `name` of the spool at `dir` (created when missing), waiting while another
 * process holds it. Resolves to the held lock; rejects with ELOCK_TIMEOUT after `timeoutMs`,
 * with `signal.reason` when `signal` aborts, EINVALID_NAME / EINVALID_OPTION for bad input.
 */
export async function lock(dir: string, name: string, options: LockOptions = {}): Promise<LockHandle> {
  const lockName = checkLockName(name);
  const resolved = resolveLockOptions(options);
  return take(dir, lockName, resolved);
}

/**
 * Runs `fn(signal, token)` holding the lock `name`, and releases it however fn ends. Resolves
 * to fn's result; rejects with fn's error if it threw. If fn resolved but the lock was lost
 * while it ran, rejects with ELOCK_COMPROMISED (fn's result may rest on lost exclusivity).
 */
export async function withLock<T>(
  dir: string,
  name: string,
  fn: (signal: AbortSignal, token: number) => T | PromiseLike<T>,
  options: LockOptions = {},
): Promise<T> {
  const lockName = checkLockName(name);
  const resolved = resolveLockOptions(options);
  if (typeof fn !== 'function') throw invalid('fn', 'a function (signal, token) => …', fn);
  const handle = await take(dir, lockName, resolved);
  let result: T;
  try {
    result = await fn(handle.signal, handle.token);
  } catch (error) {
    // fn's error is the one to report; a loss of the lock is in handle.signal.reason.
    await handle.release().catch(() => {});
    throw error;
  }
  await handle.release();
  return result;
}

async function take(dir: string, name: string, options: ResolvedLockOptions): Promise<LockHandle> {
  options.signal?.throwIfAborted();
  // Tokens are synced whatever the queues' durability: a token must never be handed out twice.
  const spool = await openSpool(dir, true, { share: undefined, strictModes: true });
  const state = new LockState(spool, name);
  const entry = await acquire(state, options);
  const held = new HeldLock(state, entry, options.staleMs);
  const release = () => held.release();
  return Object.defineProperties(release, {
    release: { value: release, enumerable: true },
    token: { value: entry.token, enumerable: true },
    signal: { value: held.signal, enumerable: true },
  }) as LockHandle;
}

async function acquire(state: LockState, options: ResolvedLockOptions): Promise<LockEntry> {
  const { signal, staleMs, timeoutMs, retryMs } = options;
  const giveUpAt = Date.now() + timeoutMs;
  const action = `take the lock ${state.name} (${state.dir})`;
  for (;;) {
    let current: LockEntry;
    let taken: LockEntry | null = null;
    try {
      current = await state.read();
      const now = Date.now();
      // null: another contender took it first (or the holder renewed just in time)
      if (isTakeable(current, now)) taken = await state.take(current, staleMs, now);
    } catch (error) {
      throw storageError(error, action);
    }
    if (taken) {
      if (!signal?.aborted) return taken;
      await state.free(taken).catch(() => {}); // aborted while taking: it is not the caller's any more
      throw signal.reason;
    }
    const now = Date.now();
    const left = giveUpAt - now;
    if (left <= 0) {
      const holder =
        current.deadline > now ? `held (token ${current.token}) until ${new Date(current.deadline).toISOString()}` : 'in demand';
      throw new LockTimeoutError(
        `Cannot take the lock ${state.name} within timeoutMs (${timeoutMs} ms): it is ${holder}. Nothing is held; try again later or wait longer`,
      );
    }
    let pause = Math.round(retryMs * (0.5 + Math.random()));
    if (current.deadline > now) pause = Math.min(pause, current.deadline - now + 1); // it expires sooner
    await sleep(Math.max(1, Math.min(pause, left)), signal);
  }
}

/** Locks held by this process, released synchronously if it exits without releasing them. */
const held = new Set<HeldLock>();
const releaseAllOnExit = () => {
  for (const h of held) h.releaseOnExit();
};

/** The keepalive and release of one held lock. */
class HeldLock {
  readonly #state: LockState;
  readonly #staleMs: number;
  readonly #controller = new AbortController();
  #entry: LockEntry;
  #timer: NodeJS.Timeout | undefined;
  /** The renewal in flight: release() waits for it, then renames the name it left. */
  #renewing: Promise<void> = Promise.resolve();
  #released: Promise<void> | undefined;

  constructor(state: LockState, entry: LockEntry, staleMs: number) {
    this.#state = state;
    this.#entry = entry;
    this.#staleMs = staleMs;
    if (held.size === 0) process.on('exit', releaseAllOnExit);
    held.add(this);
    this.#schedule();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  release(): Promise<void> {
    this.#released ??= this.#release();
    return this.#released;
  }

  releaseOnExit(): void {
    clearTimeout(this.#timer);
    this.#state.freeSync(this.#entry);
  }

  async #release(): Promise<void> {
    clearTimeout(this.#timer);
    await this.#renewing; // never rejects
    this.#forget();
    let freed: boolean;
    try {
      // Even after a reported loss: the rename of our exact name can only succeed if the entry
      // is still ours, and then it spares the next contender waiting for staleMs.
      freed = await this.#state.free(this.#entry);
    } catch (error) {
      throw storageError(error, `release the lock ${this.#state.name} (${this.#state.dir})`);
    }
    if (!freed) this.#compromise(null);
    if (this.signal.aborted) throw this.signal.reason;
  }

  /** Unref'd: a keepalive does not keep the process alive (the work under the lock does). */
  #schedule(): void {
    this.#timer = setTimeout(
      () => {
        this.#renewing = this.#renew();
      },
      Math.floor(this.#staleMs / 3),
    );
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    try {
      const next = await this.#state.renew(this.#entry, this.#staleMs);
      if (next === null) return this.#compromise(null);
      this.#entry = next;
    } catch (error) {
      // An I/O error is retried at the next tick: a renewal that succeeds later still proves that
      // nobody took the lock. Once the deadline has passed without one, someone may have.
      if (Date.now() >= this.#entry.deadline) return this.#compromise(error);
    }
    if (this.#released === undefined) this.#schedule();
  }

  #compromise(cause: unknown): void {
    this.#forget();
    if (this.signal.aborted) return;
    const { name } = this.#state;
    const why =
      cause === null
        ? 'another process took it after staleMs without a renewal (this process was paused or too busy to renew), or its state was removed'
        : `it could not be renewed before its deadline (${(cause as Error).message ?? cause})`;
    this.#controller.abort(
      new LockCompromisedError(
        `The lock ${name} (token ${this.#entry.token}) was lost: ${why}. Stop using what it protects; a longer staleMs tolerates longer pauses`,
        cause === null ? undefined : { cause },
      ),
    );
  }

  #forget(): void {
    clearTimeout(this.#timer);
    held.delete(this);
    if (held.size === 0) process.off('exit', releaseAllOnExit);
  }
}

/** Resolves after `ms` (a ref'd timer: a waiting lock() keeps the process alive), or rejects with the abort reason. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function checkLockName(name: unknown): string {
  if (typeof name !== 'string' || !LOCK_NAME.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name) : String(name);
    throw new InvalidNameError(
      `Invalid lock name ${shown} (${name === null ? 'null' : typeof name}): use 1 to 100 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit`,
    );
  }
  return name;
}

function resolveLockOptions(options: LockOptions): ResolvedLockOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.includes(key)) {
      throw new InvalidOptionError(`Unknown lock option \`${key}\`; the known ones are: ${KNOWN_OPTIONS.join(', ')}`);
    }
  }
  const { staleMs = LOCK_DEFAULTS.staleMs, timeoutMs = LOCK_DEFAULTS.timeoutMs, retryMs = LOCK_DEFAULTS.retryMs, signal } = options;
  checkInteger('staleMs', staleMs, MIN_STALE_MS, MAX_TIMER_MS);
  if (timeoutMs !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0)) {
    throw invalid('timeoutMs', 'an integer from 0 up, or Infinity', timeoutMs);
  }
  checkInteger('retryMs', retryMs, 1, 60_000);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal', 'an AbortSignal', signal);
  return { staleMs, timeoutMs, retryMs, signal };
}
