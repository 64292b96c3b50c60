/**
 * Named locks (lib/lock.ts, lib/lock-state.ts): mutual exclusion and strictly increasing fencing
 * tokens across real processes, takeover after a holder is killed or paused, the stale-takeover
 * race of proper-lockfile #121, and the API's edges (timeout, abort, withLock, validation).
 *
 * Children are spec/fixtures/lock-*.mjs, importing the built library (dist/). Timing assertions
 * are lower bounds derived from the deadlines written on disk, or generous one-sided bounds.
 */
import { readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lock, type SpoolqError, withLock } from '../lib/index.js';
import { openSpool } from '../lib/layout.js';
import { FREE, isTakeable, type LockEntry, LockState, lockEntry, parseLockEntry } from '../lib/lock-state.js';
import { type Child, cleanup, runFixture, spoolPath, waitFor } from './helpers.js';

const children: Child[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.proc.signalCode === 'SIGSTOP') child.proc.kill('SIGCONT');
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
    await child.exited;
  }
  await cleanup();
});

function spawn(name: string, args: string[]): Child {
  const child = runFixture(name, args);
  children.push(child);
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The JSON events a lock-hold.mjs child printed, one per line. */
function events(child: Child): Array<Record<string, any>> {
  return child
    .stdout()
    .split('\n')
    .slice(0, -1) // complete lines only
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** Waits for the event `name`; fails at once, with the child's output, if it exits without it. */
async function event(child: Child, name: string, timeoutMs = 40_000): Promise<Record<string, any>> {
  const found = await waitFor(() => {
    const done = child.proc.stdout?.readableEnded === true; // exited, and all it printed was read
    return events(child).find((e) => e.event === name) ?? (done ? 'exited' : undefined);
  }, timeoutMs).catch(() => undefined);
  if (found === undefined || found === 'exited') {
    const why = found === 'exited' ? `the child exited (${child.proc.exitCode ?? child.proc.signalCode})` : `not within ${timeoutMs} ms`;
    throw new Error(`no event ${name}: ${why}; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
  }
  return found;
}

/** The entry of lock `name` as it is on disk (the one name that parses). */
async function onDisk(spool: string, name: string): Promise<LockEntry> {
  const entries = (await readdir(join(spool, 'locks', name))).map(parseLockEntry).filter((e) => e !== null);
  expect(entries).toHaveLength(1);
  return entries[0] as LockEntry;
}

async function rejection(promise: Promise<unknown>): Promise<SpoolqError> {
  try {
    await promise;
  } catch (error) {
    return error as SpoolqError;
  }
  throw new Error('expected a rejection');
}

describe('mutual exclusion across processes', () => {
  it('4 processes × 250 read-modify-writes under the lock: count exactly 1000, tokens strictly increasing in acquisition order', async () => {
    const spool = await spoolPath();
    const counter = join(spool, '..', 'counter');
    const procs = Array.from({ length: 4 }, () => spawn('lock-counter.mjs', [spool, counter, '250', '2']));
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes, procs.map((p) => p.stderr()).join('\n')).toEqual([0, 0, 0, 0]);
    expect(await readFile(counter, 'utf8')).toBe('1000');
    const taken = procs.flatMap((p) =>
      p
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('T '))
        .map((l) => {
          const [, token, value] = l.split(' ');
          return { token: Number(token), value: Number(value) };
        }),
    );
    expect(taken).toHaveLength(1000);
    // The value each holder read is its place in the acquisition order: 0…999, each once.
    taken.sort((a, b) => a.value - b.value);
    expect(taken.map((t) => t.value)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    for (let i = 1; i < taken.length; i++) expect(taken[i]?.token).toBeGreaterThan(taken[i - 1]?.token as number);
    expect(new Set(taken.map((t) => t.token)).size).toBe(1000);
    const last = await onDisk(spool, 'counter');
    expect(last).toMatchObject({ token: taken[999]?.token, deadline: FREE });
  });
});

describe('a holder that dies or stops', () => {
  it('SIGKILL: the next process takes the lock only after the dead holder’s deadline, with a larger token', async () => {
    const spool = await spoolPath();
    const staleMs = 3_000;
    const a = spawn('lock-hold.mjs', [spool, 'job', String(staleMs), 'hold']);
    const aStarted = await event(a, 'started'); // a takes the free lock after this: its deadline is later than aStarted.at + staleMs
    const held = await event(a, 'acquired');
    const b = spawn('lock-hold.mjs', [spool, 'job', String(staleMs), 'hold']);
    await event(b, 'started');
    await sleep(100); // b is waiting, looking every 20 ms
    const killedAt = Date.now();
    a.proc.kill('SIGKILL');
    expect(await a.exited).toBe('SIGKILL');
    const left = await onDisk(spool, 'job'); // the dead holder's entry: its token and last deadline
    expect(left.token).toBe(held.token);
    expect(left.deadline).toBeGreaterThan(killedAt);
    const next = await event(b, 'acquired');
    const timing = `a started ${aStarted.at}, acquired ${held.at}, killed ${killedAt}, deadline ${left.deadline}; b acquired ${next.at}`;
    // Not before the dead holder's deadline, which is staleMs after its take or last renewal:
    expect(next.at, timing).toBeGreaterThanOrEqual(left.deadline);
    expect(next.at - aStarted.at, timing).toBeGreaterThanOrEqual(staleMs);
    expect(next.token).toBeGreaterThan(held.token);
    b.proc.kill('SIGUSR2');
    await event(b, 'released');
    expect(await b.exited).toBe(0);
  });

  it('SIGSTOP past staleMs: another takes over; after SIGCONT the first sees ELOCK_COMPROMISED and cannot touch the new lock', async () => {
    const spool = await spoolPath();
    const staleMs = 1_000;
    const a = spawn('lock-hold.mjs', [spool, 'job', String(staleMs), 'hold']);
    const first = await event(a, 'acquired');
    a.proc.kill('SIGSTOP');
    const b = spawn('lock-hold.mjs', [spool, 'job', String(staleMs), 'hold']);
    const second = await event(b, 'acquired');
    expect(second.token).toBeGreaterThan(first.token);
    a.proc.kill('SIGCONT');
    expect((await event(a, 'compromised')).code).toBe('ELOCK_COMPROMISED');
    a.proc.kill('SIGUSR2');
    expect((await event(a, 'release-failed')).code).toBe('ELOCK_COMPROMISED');
    expect(await a.exited).toBe(0); // never crashed: no uncaught error, no unhandled rejection
    // The new holder's lock is untouched: still held and renewed past another staleMs.
    expect(await onDisk(spool, 'job')).toMatchObject({ token: second.token });
    expect((await onDisk(spool, 'job')).deadline).not.toBe(FREE);
    const before = await onDisk(spool, 'job');
    await sleep(staleMs + 300);
    const renewed = await onDisk(spool, 'job');
    expect(renewed.token).toBe(second.token);
    expect(renewed.deadline).toBeGreaterThan(before.deadline);
    expect(events(b).filter((e) => e.event === 'compromised')).toEqual([]);
    b.proc.kill('SIGUSR2');
    await event(b, 'released');
    expect(await b.exited).toBe(0);
    expect(await onDisk(spool, 'job')).toEqual(lockEntry(second.token, FREE));
  });

  it('a process that ends without release() exits on its own, and its lock is free at once', async () => {
    const spool = await spoolPath();
    const a = spawn('lock-hold.mjs', [spool, 'job', '10000', 'leave']);
    const held = await event(a, 'acquired');
    expect(await a.exited).toBe(0);
    expect(await onDisk(spool, 'job')).toEqual(lockEntry(held.token, FREE));
    const again = await lock(spool, 'job', { timeoutMs: 0 });
    expect(again.token).toBe(held.token + 1);
    await again();
  });
});

describe('stale takeover (proper-lockfile #121)', () => {
  it('contenders that all judged the same entry expired: exactly one wins each round, and a late one never wins', async () => {
    const spool = await openSpool(await spoolPath(), false, { share: undefined, strictModes: true });
    const state = new LockState(spool, 'race');
    for (let round = 0; round < 200; round++) {
      // Every contender looks first, so all of them decide on the same entry (free or expired)…
      const seen = await Promise.all(Array.from({ length: 8 }, () => state.read()));
      const entry = seen[0] as LockEntry;
      for (const s of seen) expect(s).toEqual(entry);
      const now = entry.deadline + 1; // …which has expired for all of them
      expect(isTakeable(entry, now)).toBe(true);
      // …then all take it over at once (the renames run in parallel in libuv's thread pool).
      const results = await Promise.all(seen.map((s) => state.take(s, 1_000, now)));
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.token).toBe(entry.token + 1);
      // #121: a contender paused between its "expired" decision and its takeover resumes now;
      // it must not remove or take the fresh lock.
      expect(await state.take(entry, 1_000, now)).toBeNull();
      expect(await readdir(state.dir)).toEqual([winners[0]?.name]);
    }
  });
});

describe('lock() and withLock()', () => {
  it('the handle: callable, token, signal; release is idempotent; a released lock is taken again at once with the next token', async () => {
    const spool = await spoolPath();
    const first = await lock(spool, 'a');
    expect(typeof first).toBe('function');
    expect(first.token).toBe(1);
    expect(first.signal.aborted).toBe(false);
    const released = first();
    expect(first.release()).toBe(released);
    await released;
    await first.release();
    const second = await lock(spool, 'a', { timeoutMs: 0 });
    expect(second.token).toBe(2);
    await second.release();
    // other names are independent
    const other = await lock(spool, 'b', { timeoutMs: 0 });
    expect(other.token).toBe(1);
    await other();
  });

  it('tokens persist: a new process continues from the last token', async () => {
    const spool = await spoolPath();
    for (let i = 1; i <= 3; i++) await withLock(spool, 'a', (_signal, token) => expect(token).toBe(i));
    const child = spawn('lock-hold.mjs', [spool, 'a', '10000', 'leave']);
    expect((await event(child, 'acquired')).token).toBe(4);
    expect(await child.exited).toBe(0);
    const last = await lock(spool, 'a');
    expect(last.token).toBe(5);
    await last();
  });

  it('ELOCK_TIMEOUT after timeoutMs; timeoutMs 0 tries once', async () => {
    const spool = await spoolPath();
    const held = await lock(spool, 'a');
    const t0 = Date.now();
    const error = await rejection(lock(spool, 'a', { timeoutMs: 300, retryMs: 20 }));
    const elapsed = Date.now() - t0;
    expect(error.code).toBe('ELOCK_TIMEOUT');
    expect(error.message).toContain('token 1');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(10_000);
    expect((await rejection(lock(spool, 'a', { timeoutMs: 0 }))).code).toBe('ELOCK_TIMEOUT');
    await held();
    const next = await lock(spool, 'a', { timeoutMs: 0 });
    expect(next.token).toBe(2);
    await next();
  });

  it('aborting the signal cancels a wait with signal.reason, and takes nothing', async () => {
    const spool = await spoolPath();
    const held = await lock(spool, 'a');
    const controller = new AbortController();
    const waiting = lock(spool, 'a', { signal: controller.signal });
    await sleep(150);
    const reason = new Error('no longer needed');
    controller.abort(reason);
    expect(await rejection(waiting)).toBe(reason);
    expect(await rejection(lock(spool, 'a', { signal: controller.signal }))).toBe(reason); // already aborted
    await held();
    const next = await lock(spool, 'a', { timeoutMs: 0 });
    expect(next.token).toBe(2); // the cancelled waiters took nothing
    await next();
  });

  it('withLock returns fn’s result, releases when fn throws and rethrows its error', async () => {
    const spool = await spoolPath();
    const result = await withLock(spool, 'a', async (signal, token) => {
      expect(signal).toBeInstanceOf(AbortSignal);
      return { token };
    });
    expect(result).toEqual({ token: 1 });
    const boom = new Error('boom');
    expect(
      await rejection(
        withLock(spool, 'a', async () => {
          throw boom;
        }),
      ),
    ).toBe(boom);
    expect(await onDisk(spool, 'a')).toEqual(lockEntry(2, FREE));
    const next = await lock(spool, 'a', { timeoutMs: 0 });
    expect(next.token).toBe(3);
    await next();
  });

  it('a lock taken over while fn runs: signal aborts, withLock rejects with ELOCK_COMPROMISED, the new holder is untouched', async () => {
    const spool = await spoolPath();
    const state = new LockState(await openSpool(spool, false, { share: undefined, strictModes: true }), 'a');
    let usurper: LockEntry | null = null;
    const error = await rejection(
      withLock(
        spool,
        'a',
        async (signal) => {
          const seen = await state.read();
          usurper = await state.take(seen, 60_000, seen.deadline + 1); // as a process whose clock says it expired
          await waitFor(() => signal.aborted, 5_000);
          expect((signal.reason as SpoolqError).code).toBe('ELOCK_COMPROMISED');
          return 'done';
        },
        { staleMs: 1_000 },
      ),
    );
    expect(error.code).toBe('ELOCK_COMPROMISED');
    expect(usurper).toMatchObject({ token: 2 });
    expect(await onDisk(spool, 'a')).toEqual(usurper);
  });

  it('a holder late to renew keeps the lock if nobody took it meanwhile (the rename proves it)', async () => {
    const spool = await spoolPath();
    const handle = await lock(spool, 'a', { staleMs: 1_000 });
    const until = Date.now() + 1_300;
    while (Date.now() < until); // the event loop is blocked past the deadline: no renewal
    const [late] = readdirSync(join(spool, 'locks', 'a')); // sync: before the keepalive timer can run
    expect(parseLockEntry(late as string)?.deadline).toBeLessThan(Date.now());
    await waitFor(async () => (await onDisk(spool, 'a')).deadline > Date.now(), 5_000); // renewed late
    expect(handle.signal.aborted).toBe(false);
    await handle();
    expect(await onDisk(spool, 'a')).toEqual(lockEntry(1, FREE));
  });

  it('lock state removed while held: signal aborts and release() rejects with ELOCK_COMPROMISED; the name works again', async () => {
    const spool = await spoolPath();
    const handle = await lock(spool, 'a', { staleMs: 1_000 });
    await rm(join(spool, 'locks', 'a'), { recursive: true });
    await waitFor(() => handle.signal.aborted, 5_000);
    expect((handle.signal.reason as SpoolqError).code).toBe('ELOCK_COMPROMISED');
    expect((await rejection(handle.release())).code).toBe('ELOCK_COMPROMISED');
    expect((await rejection(handle())).code).toBe('ELOCK_COMPROMISED'); // the same outcome again
    const again = await lock(spool, 'a', { timeoutMs: 0 });
    await again();
  });

  it('stray files in a lock directory are ignored; only strays is ESPOOL_FORMAT; an empty one is rebuilt', async () => {
    const spool = await spoolPath();
    await (await lock(spool, 'a'))();
    await writeFile(join(spool, 'locks', 'a', 'stray.tmp'), 'x');
    await mkdir(join(spool, 'locks', 'a', '.junk'));
    const handle = await lock(spool, 'a', { timeoutMs: 0 });
    expect(handle.token).toBe(2);
    await handle();
    // two parsable entries (only by tampering): the highest token counts, nothing crashes
    await writeFile(join(spool, 'locks', 'a', lockEntry(7, FREE).name), '');
    const highest = await lock(spool, 'a', { timeoutMs: 0 });
    expect(highest.token).toBe(8);
    await highest();
    await mkdir(join(spool, 'locks', 'b'), { recursive: true });
    await writeFile(join(spool, 'locks', 'b', 'stray.tmp'), 'x');
    expect((await rejection(lock(spool, 'b', { timeoutMs: 0 }))).code).toBe('ESPOOL_FORMAT');
    // an empty lock directory (its entry lost before any take synced it) is rebuilt in place
    await mkdir(join(spool, 'locks', 'c'));
    const rebuilt = await lock(spool, 'c', { timeoutMs: 0 });
    expect(rebuilt.token).toBe(1);
    await rebuilt();
  });

  it('bad names and options are refused before anything is written', async () => {
    const spool = await spoolPath();
    for (const name of ['', '.hidden', '../up', 'a/b', 'x'.repeat(101), 'sp ace', 42, null]) {
      expect((await rejection(lock(spool, name as string))).code).toBe('EINVALID_NAME');
      expect((await rejection(withLock(spool, name as string, () => 1))).code).toBe('EINVALID_NAME');
    }
    const bad: Array<[string, unknown]> = [
      ['staleMs', 999],
      ['staleMs', 1.5e3 + 0.5],
      ['staleMs', '10000'],
      ['timeoutMs', -1],
      ['timeoutMs', Number.NaN],
      ['retryMs', 0],
      ['signal', {}],
      ['stale', 10_000],
    ];
    for (const [key, value] of bad) {
      const error = await rejection(lock(spool, 'a', { [key]: value } as object));
      expect(error.code).toBe('EINVALID_OPTION');
      expect(error.message).toContain(key);
    }
    expect((await rejection(withLock(spool, 'a', 'not a function' as any))).code).toBe('EINVALID_OPTION');
    await expect(readdir(spool)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
