/**
 * When a group starts (and stops) receiving, with producer processes pushing all along.
 *
 * The documented boundary (README, "When a group starts receiving"): a group receives every push
 * *called* after openQueue created it (or after bind resolved), in any process, and none that
 * *resolved* before its creation began; a push running at that moment goes to it whole or not at
 * all (a pushMany is never split). A deleted group stops receiving at once and its consumers
 * stop with EGROUP_NOT_FOUND, while producers and other groups carry on.
 *
 * The producers (spec/fixtures/pubsub-stream.mjs) print process.hrtime.bigint() just before each
 * push/pushMany is called and once it resolved; this test takes the same clock around each
 * change it makes (CLOCK_MONOTONIC: one clock for every process of the machine). So for each push
 * and group, the binding states the push may have seen are known: those in force at some instant
 * between its call and its resolution. If the push's topic matches every one of them it must be
 * in the group; if none, it must not; otherwise (it ran during the change) either, but whole.
 * Nothing here asserts a duration: every wait is for a condition, with a generous deadline.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Message, openQueue, type Subscription } from '../lib/index.js';
import { useHarness } from './harness.js';
import { type Child, spoolPath, waitFor, within } from './helpers.js';
import { matches, ROUTES_MARK, readyFiles } from './pubsub-helpers.js';

const { spawn, open } = useHarness();

const SLOW = { timeout: 90_000 };
const now = () => process.hrtime.bigint();

/** One push or pushMany of a stream producer: when it was called and resolved, and what it pushed. */
interface Op {
  producer: string;
  k: number;
  called: bigint;
  resolved: bigint;
  ids: string[];
  topic: string | undefined;
}

const lines = (child: Child, prefix: string) =>
  child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith(prefix));

const resolvedCount = (child: Child) => lines(child, 'R ').length;

/** The operations of a pubsub-stream.mjs child; every one it called must have resolved. */
function ops(child: Child, producer: string): Op[] {
  const called = new Map(
    lines(child, 'C ').map((l) => {
      const [, k, t] = l.split(' ');
      return [Number(k), BigInt(t as string)];
    }),
  );
  const result = lines(child, 'R ').map((l) => {
    const [, k, t, ...rest] = l.split(' ');
    const { ids, topic } = JSON.parse(rest.join(' '));
    return { producer, k: Number(k), called: called.get(Number(k)) as bigint, resolved: BigInt(t as string), ids, topic };
  });
  expect(result.length).toBe(called.size);
  for (const op of result) expect(op.called).toBeLessThan(op.resolved);
  return result;
}

/** Stops a stream producer (SIGTERM: it finishes what is in flight) and checks it ended clean. */
async function stopProducer(child: Child): Promise<{ unrouted: number }> {
  child.proc.kill('SIGTERM');
  const code = await within(child.exited, 20_000, 'producer exit after SIGTERM');
  expect({ code, stderr: child.stderr(), errors: lines(child, 'E ') }).toEqual({ code: 0, stderr: '', errors: [] });
  const done = lines(child, 'done ')[0];
  expect(done).toBeDefined();
  return JSON.parse((done as string).slice(5));
}

/** Waits until every producer has resolved `n` more operations than it had when called. */
async function progress(producers: Child[], n: number): Promise<void> {
  const targets = producers.map((p) => resolvedCount(p) + n);
  await waitFor(() => producers.every((p, i) => resolvedCount(p) >= (targets[i] as number)), 30_000, 10).catch(() => {
    throw new Error(`producers stalled: ${producers.map((p) => `${resolvedCount(p)}\n${p.stderr()}`).join('; ')}`);
  });
}

/**
 * A change of one group's bindings, and when it ran: `before` (null: the group did not exist)
 * until `begin`, `after` from `end` on, and in between the union of the two at most and the
 * intersection at least (bindings.ts adds before it removes).
 */
interface Change {
  group: string;
  begin: bigint;
  end: bigint;
  before: readonly string[] | null;
  after: readonly string[];
}

type Verdict = 'in' | 'out' | 'either';

/** What the boundary rule says of `op` and the group whose changes are `changes` (in order). */
function verdict(changes: readonly Change[], op: Op): Verdict {
  const seen: Array<readonly string[] | null> = [];
  // The states in force at some instant of [called, resolved]: a stable state, or both ends of a change.
  for (let i = -1; i < changes.length; i++) {
    const from = i < 0 ? null : (changes[i] as Change).end;
    const until = i + 1 < changes.length ? (changes[i + 1] as Change).begin : null;
    if ((from === null || from <= op.resolved) && (until === null || op.called <= until)) {
      seen.push(i < 0 ? (changes[0]?.before ?? null) : (changes[i] as Change).after);
    }
  }
  for (const c of changes) if (c.begin <= op.resolved && op.called <= c.end) seen.push(c.before, c.after);
  const routed = seen.map((s) => s?.some((p) => matches(p, op.topic)) ?? false);
  if (routed.every(Boolean)) return 'in';
  if (!routed.some(Boolean)) return 'out';
  return 'either';
}

/** Counts of a group's check, for the log and for the assertions that each case was exercised. */
interface Tally {
  in: number;
  out: number;
  eitherIn: number;
  eitherOut: number;
  /** (a) called after the group's creation resolved, and matching: must be in. */
  calledAfter: number;
  /** (b) resolved before the group's creation began: must be out. */
  resolvedBefore: number;
}

/**
 * Checks a group's content against the boundary rule: each operation is in it whole or not at
 * all, wholly when every state it may have seen routes its topic there, not at all when none does.
 */
function checkGroup(group: string, changes: readonly Change[], all: readonly Op[], held: ReadonlySet<string>): Tally {
  const mine = changes.filter((c) => c.group === group);
  const created = mine[0] as Change;
  const tally: Tally = { in: 0, out: 0, eitherIn: 0, eitherOut: 0, calledAfter: 0, resolvedBefore: 0 };
  const wrong: unknown[] = [];
  for (const op of all) {
    const count = op.ids.filter((id) => held.has(id)).length;
    const v = verdict(mine, op);
    const isIn = count === op.ids.length;
    if (op.called > created.end && v === 'in') tally.calledAfter++;
    if (op.resolved < created.begin) tally.resolvedBefore++;
    if (count !== 0 && count !== op.ids.length) {
      wrong.push({ group, partial: `${count} of ${op.ids.length}`, op: show(op), verdict: v });
    } else if ((v === 'in' && !isIn) || (v === 'out' && isIn)) {
      wrong.push({ group, expected: v, got: isIn ? 'in' : 'out', op: show(op), changes: mine.map(showChange) });
    }
    if (v === 'in') tally.in++;
    else if (v === 'out') tally.out++;
    else if (isIn) tally.eitherIn++;
    else tally.eitherOut++;
  }
  expect(wrong.slice(0, 10)).toEqual([]);
  return tally;
}

const show = (op: Op) => ({ ...op, called: String(op.called), resolved: String(op.resolved) });
const showChange = (c: Change) => ({ ...c, begin: String(c.begin), end: String(c.end) });

const TOPICS = ['orders.created', 'orders.eu.created', 'users.signup', 'misc', null];

/** Two stream producers: one durable (fsync, so each push is in flight for a while), one not. */
function startProducers(spool: string): Child[] {
  return [
    spawn('pubsub-stream.mjs', [
      spool,
      'p1',
      JSON.stringify({ topics: TOPICS, seed: 11, durability: 'fsync', lanes: 2, manyEvery: 4, manySize: 5 }),
    ]),
    spawn('pubsub-stream.mjs', [
      spool,
      'p2',
      JSON.stringify({ topics: TOPICS, seed: 12, durability: 'none', lanes: 2, manyEvery: 3, manySize: 4, pauseMs: 1 }),
    ]),
  ];
}

describe('groups created and rebound while producer processes push', () => {
  it('a group gets every push called after it exists or was bound, none resolved before, and a pushMany whole', SLOW, async () => {
    const spool = await spoolPath();
    // 'base' is bound to '#' from the start: it must end up with every message.
    await (await openQueue(spool, { group: 'base', durability: 'none' })).close();
    const admin = await open(spool, { group: null, durability: 'none' });
    const producers = startProducers(spool);
    for (const p of producers) await p.line((l) => l === 'started');
    await progress(producers, 30); // pushes resolved before any group below was created

    const changes: Change[] = [];
    const bindings = new Map<string, readonly string[]>();
    /** Runs one change, stamps it, and lets each producer resolve `then` more operations after it. */
    const change = async (group: string, after: readonly string[], fn: () => Promise<unknown>, then = 20) => {
      const begin = now();
      await fn();
      const end = now();
      changes.push({ group, begin, end, before: bindings.get(group) ?? null, after });
      bindings.set(group, after);
      await progress(producers, then);
    };
    const fsyncOpen = (group: string, topics?: string[]) => open(spool, { group, ...(topics ? { topics } : {}) });

    await change('g1', ['#'], () => fsyncOpen('g1')); // without topics: bound to '#'
    await change('g2', ['orders.*'], () => fsyncOpen('g2', ['orders.*']));
    await change('g3', ['users.#'], () => fsyncOpen('g3', ['users.#']));
    await change('g3', ['orders.#', 'users.#'], () => admin.bind('g3', ['orders.#']));
    await change('g3', ['orders.#'], () => admin.unbind('g3', ['users.#']));
    await change('g4', [], () => fsyncOpen('g4', [])); // bound to nothing: receives nothing
    await change('g4', ['#'], () => admin.bind('g4', ['#']));
    await change('g2', ['misc', 'users.*'], () => fsyncOpen('g2', ['misc', 'users.*'])); // reopened with topics: exactly these
    // subscribe() creates its group already bound; its handler receives what the group gets.
    const got5: string[] = [];
    let sub: Subscription | undefined;
    await change('g5', ['orders.created'], async () => {
      sub = await admin.subscribe(
        'orders.created',
        async (m: Message) => {
          got5.push(m.id);
        },
        { group: 'g5', concurrency: 2 },
      );
    });

    // A burst of changes a few pushes apart, so that more pushes run across one.
    for (let i = 0; i < 6; i++) {
      const h = `h${i}`;
      if (i % 3 === 0) await change(h, ['#'], () => fsyncOpen(h), 3);
      else if (i % 3 === 1) await change(h, ['orders.#'], () => fsyncOpen(h, ['orders.#']), 3);
      else {
        await change(h, [], () => fsyncOpen(h, []), 3);
        await change(h, ['misc', 'users.*'], () => admin.bind(h, ['users.*', 'misc']), 3);
        await change(h, ['users.*'], () => admin.unbind(h, ['misc']), 3);
      }
    }
    await progress(producers, 20);
    const GROUPS = ['g1', 'g2', 'g3', 'g4', 'g5', 'h0', 'h1', 'h2', 'h3', 'h4', 'h5'];
    const ON_DISK = GROUPS.filter((g) => g !== 'g5'); // g5 is consumed by its subscription

    expect(await admin.groups()).toEqual(
      ['base', ...GROUPS].map((name) => ({ name, topics: name === 'base' ? ['#'] : bindings.get(name) })),
    );
    const unrouted = await Promise.all(producers.map(stopProducer));
    expect(unrouted).toEqual([{ unrouted: 0 }, { unrouted: 0 }]); // 'base' takes everything
    const all = [...ops(producers[0] as Child, 'p1'), ...ops(producers[1] as Child, 'p2')];
    const ids = new Set(all.flatMap((op) => op.ids));
    expect(ids.size).toBe(all.reduce((n, op) => n + op.ids.length, 0));

    // Drain g5 through its subscription, then stop it: what it got is what the group received.
    await waitFor(async () => {
      const s = await admin.stats('g5');
      return s.ready === 0 && s.leased === 0;
    }, 30_000);
    await sub?.close();
    expect(new Set(got5).size).toBe(got5.length);

    const held = new Map<string, Set<string>>();
    for (const g of ['base', ...ON_DISK]) held.set(g, new Set((await readyFiles(spool, g)).keys()));
    held.set('g5', new Set(got5));
    expect(held.get('base')).toEqual(ids); // nothing lost, nothing invented
    for (const [g, set] of held)
      expect(
        [...set].filter((id) => !ids.has(id)),
        g,
      ).toEqual([]);

    const tallies: Record<string, Tally> = {};
    for (const g of GROUPS) {
      const tally = checkGroup(g, changes, all, held.get(g) as Set<string>);
      tallies[g] = tally;
      expect(tally.resolvedBefore, `${g}: pushes resolved before it was created`).toBeGreaterThan(0);
      if (bindings.get(g)?.length) expect(tally.calledAfter, `${g}: matching pushes called after it was created`).toBeGreaterThan(0);
    }

    // One inode per message, one name per group that holds it (g5 acked its own).
    const onDisk = ['base', ...ON_DISK];
    const paths = new Map<string, string[]>();
    for (const g of onDisk) for (const [id, path] of await readyFiles(spool, g)) paths.set(id, [...(paths.get(id) ?? []), path]);
    const wrong: unknown[] = [];
    for (const [id, names] of paths) {
      const stats = await Promise.all(names.map((p) => lstat(p)));
      if (new Set(stats.map((s) => s.ino)).size !== 1 || stats.some((s) => s.nlink !== names.length)) {
        wrong.push({ id, nlinks: stats.map((s) => s.nlink), names });
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    for (const g of onDisk) expect(await readdir(join(spool, 'groups', g, 'leased'))).toEqual([]);
    expect(await readdir(join(spool, 'tmp'))).toEqual([]); // no stray files: everything was linked or removed

    const summary = Object.entries(tallies)
      .map(([g, t]) => `${g} in ${t.in}/out ${t.out}/racing ${t.eitherIn + t.eitherOut} (${t.eitherIn} in)`)
      .join('; ');
    console.log(`boundary: ${all.length} operations, ${ids.size} messages; ${summary}`);
  });
});

describe('deleteGroup while producer processes push', () => {
  it(
    'producers carry on without an error, the group is gone for good, its consumer stops with EGROUP_NOT_FOUND, others complete',
    SLOW,
    async () => {
      const spool = await spoolPath();
      for (const [group, topics] of [
        ['keep', ['#']],
        ['doomed', ['#']],
        ['orders', ['orders.#']],
      ] as const) {
        await (await openQueue(spool, { group, topics: [...topics], durability: 'none' })).close();
      }
      const admin = await open(spool, { group: null, durability: 'none' });
      const consumer = (group: string, concurrency: number) => {
        const child = spawn('pubsub-consumer.mjs', [spool, group, String(concurrency)]);
        return child.line((l) => l === `ready ${group}`).then(() => child);
      };
      const keep = await consumer('keep', 2);
      const doomed = await consumer('doomed', 1);
      const acked = (c: Child) => lines(c, 'M ').map((l) => JSON.parse(l.slice(2)) as { id: string; attempts: number; topic?: string });

      const producers = startProducers(spool);
      for (const p of producers) await p.line((l) => l === 'started');
      await progress(producers, 30);
      await waitFor(() => acked(doomed).length >= 30, 30_000);

      const begin = now();
      expect(await admin.deleteGroup('doomed')).toBe(true);
      const end = now();
      expect(await readdir(join(spool, 'groups'))).toEqual([ROUTES_MARK, 'keep', 'orders']);

      // Its consumer stops by itself; a pop on its handle then rejects with EGROUP_NOT_FOUND.
      expect(await within(doomed.exited, 30_000, 'the consumer of the deleted group stopping')).toBe(0);
      expect(doomed.stderr()).toBe('');
      const errors = lines(doomed, 'E ').map((l) => l.split(' ')[1]);
      expect(errors).toContain('EGROUP_NOT_FOUND');
      // A message it was handling when the group went may fail its ack: that lease is lost with it.
      expect(lines(doomed, 'E ').filter((l) => !/^E (EGROUP_NOT_FOUND|ELEASE_LOST) /.test(l))).toEqual([]);
      expect(lines(doomed, 'POP')).toEqual(['POP_ERR EGROUP_NOT_FOUND']);
      expect(doomed.stdout()).toMatch(/\nclosed\n$/);

      // Producers keep pushing after the deletion, and the group stays gone.
      await progress(producers, 30);
      expect(await readdir(join(spool, 'groups'))).toEqual([ROUTES_MARK, 'keep', 'orders']);
      const unrouted = await Promise.all(producers.map(stopProducer));
      expect(unrouted).toEqual([{ unrouted: 0 }, { unrouted: 0 }]);
      const all = [...ops(producers[0] as Child, 'p1'), ...ops(producers[1] as Child, 'p2')];
      const ids = new Set(all.flatMap((op) => op.ids));
      expect(all.filter((op) => op.called > end).length).toBeGreaterThan(0);

      // The deleted group's consumer got each message once, and none pushed after the deletion.
      const doomedIds = acked(doomed).map((d) => d.id);
      expect(new Set(doomedIds).size).toBe(doomedIds.length);
      const calledAfter = new Set(all.filter((op) => op.called > end).flatMap((op) => op.ids));
      expect(doomedIds.filter((id) => calledAfter.has(id) || !ids.has(id))).toEqual([]);

      // 'keep' gets everything, exactly once; 'orders' (not consumed) holds exactly its topics.
      await waitFor(() => acked(keep).length >= ids.size, 40_000, 25).catch(() => {
        throw new Error(`keep acked ${acked(keep).length} of ${ids.size}; stderr: ${keep.stderr()}`);
      });
      keep.proc.kill('SIGTERM');
      expect(await within(keep.exited, 10_000, 'keep exit')).toBe(0);
      const keepIds = acked(keep).map((d) => d.id);
      expect(keepIds.length).toBe(ids.size);
      expect(new Set(keepIds)).toEqual(ids);
      expect(lines(keep, 'E ')).toEqual([]);
      const orderIds = new Set(all.filter((op) => matches('orders.#', op.topic)).flatMap((op) => op.ids));
      expect(new Set((await readyFiles(spool, 'orders')).keys())).toEqual(orderIds);

      expect(await admin.groups()).toEqual([
        { name: 'keep', topics: ['#'] },
        { name: 'orders', topics: ['orders.#'] },
      ]);
      await expect(admin.stats('doomed')).rejects.toMatchObject({ code: 'EGROUP_NOT_FOUND' });
      await expect(admin.bind('doomed', ['#'])).rejects.toMatchObject({ code: 'EGROUP_NOT_FOUND' });
      expect(await readdir(join(spool, 'tmp'))).toEqual([]); // the deleted group's files included
      const pushedBefore = all.filter((op) => op.resolved < begin).length;
      console.log(
        `deleteGroup: ${all.length} operations (${pushedBefore} resolved before the deletion began, ${calledAfter.size} messages called after it), ` +
          `the doomed consumer acked ${doomedIds.length}, errors ${[...new Set(errors)].join(',')}`,
      );
    },
  );

  // FAILS (lib bug, reported): a claim is a rename into leased/ followed by a read of the file.
  // If the group is deleted between the two, the read fails with ENOENT, which Leases.claim
  // wraps as ESTORAGE ("Cannot read a claimed message: ENOENT …; check the disk") before
  // Receiver.pop can recognise a deleted group, so consume() reports a storage error to onError
  // (and pop rejects with it) instead of EGROUP_NOT_FOUND. The window is one syscall wide, so
  // the group is deleted under 16 busy handlers, up to 10 times (it shows in most rounds).
  it('a consumer busy claiming when its group is deleted reports EGROUP_NOT_FOUND, never a storage error', SLOW, async () => {
    const spool = await spoolPath();
    const admin = await open(spool, { group: null, durability: 'none' });
    const rounds: string[][] = [];
    for (let round = 0; round < 10; round++) {
      const q = await openQueue(spool, { group: 'doomed', durability: 'none' });
      await admin.pushMany(Array.from({ length: 400 }, (_, i) => i));
      const errors: string[] = [];
      let handled = 0;
      const consumer = q.consume(
        async () => {
          handled++;
        },
        { concurrency: 16, onError: (e) => errors.push(`${(e as { code?: string }).code} ${e.message.slice(0, 120)}`) },
      );
      await waitFor(() => handled >= 100, 20_000, 1);
      expect(await admin.deleteGroup('doomed')).toBe(true);
      await within(consumer.closed, 20_000, 'the consumer stopping');
      await expect(q.pop({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'EGROUP_NOT_FOUND' });
      await q.close();
      rounds.push(errors);
      expect(errors.some((e) => e.startsWith('EGROUP_NOT_FOUND '))).toBe(true);
      // Handlers running when the group went lose their lease: ELEASE_LOST is right for those.
      const others = errors.filter((e) => !/^(EGROUP_NOT_FOUND|ELEASE_LOST) /.test(e));
      expect(others, `round ${round}`).toEqual([]);
    }
    expect(await readdir(join(spool, 'tmp'))).toEqual([]);
    console.log(`deleted under busy consumers: ${rounds.map((r) => [...new Set(r.map((e) => e.split(' ')[0]))].join('+')).join(', ')}`);
  });

  // FAILS (lib bug, reported): a publish reads the groups and their bindings once, then writes
  // (and with fsync, fdatasyncs) its files, then links them into groups/<name>/ready/ by name.
  // A publish routes by the bindings it reads when it starts, and links by the group's name. If
  // the group is deleted and created again under that name while the publish runs, the publish
  // may link into the new group what the old one's bindings matched (here: messages without a
  // topic, read while 'flip' was bound to '#', in the 'flip' bound to 'orders.*'). The README
  // documents it, like the in-flight pushes of bind/unbind. What must hold: every other message
  // of an incarnation matches its bindings; a stray is always a push called before that
  // incarnation was created and resolved after its creation began.
  it(
    'a group deleted and created again with other bindings while producers push: each incarnation holds what its bindings match, and pushes in flight at its creation',
    SLOW,
    async () => {
      const spool = await spoolPath();
      await (await openQueue(spool, { group: 'base', durability: 'none' })).close();
      const admin = await open(spool, { group: null, durability: 'none' });
      const producers = startProducers(spool);
      for (const p of producers) await p.line((l) => l === 'started');
      await progress(producers, 20);

      // 'flip' alternates between bound to '#' and bound to 'orders.*'; each time it is bound to
      // 'orders.*', the ids it holds are recorded once the producers went on for a while.
      const events: Array<{ what: string; begin: bigint; end: bigint }> = [];
      const stamp = async (what: string, fn: () => Promise<unknown>) => {
        const begin = now();
        await fn();
        events.push({ what, begin, end: now() });
      };
      const create = (topics: string[]) =>
        stamp(`create ${topics}`, async () => (await openQueue(spool, { group: 'flip', topics, durability: 'none' })).close());
      const remove = () => stamp('delete', async () => expect(await admin.deleteGroup('flip')).toBe(true));
      await create(['#']);
      const snapshots: Array<Set<string>> = [];
      for (let round = 0; round < 40; round++) {
        await progress(producers, 2);
        await remove();
        await create(['orders.*']);
        await progress(producers, 4);
        snapshots.push(new Set((await readyFiles(spool, 'flip')).keys()));
        await remove();
        await create(['#']);
      }
      await Promise.all(producers.map(stopProducer));
      const all = [...ops(producers[0] as Child, 'p1'), ...ops(producers[1] as Child, 'p2')];
      const opOf = new Map(all.flatMap((op) => op.ids.map((id) => [id, op] as const)));
      let inFlight = 0;
      const strays = snapshots.flatMap((ids, round) =>
        [...ids]
          .filter((id) => !matches('orders.*', opOf.get(id)?.topic))
          .filter((id) => {
            // Routed by the '#' incarnation before: allowed when the push straddles the creation.
            const op = opOf.get(id) as Op;
            const created = events[4 * round + 2] as (typeof events)[number];
            const straddles = op.called < created.end && op.resolved > created.begin;
            if (straddles) inFlight++;
            return !straddles;
          })
          .map((id) => {
            // When its push ran, relative (µs) to the creation of the incarnation that holds it.
            const op = opOf.get(id) as Op;
            const created = events[4 * round + 2] as (typeof events)[number];
            const us = (t: bigint) => Number((t - created.begin) / 1000n);
            const timeline = events.slice(4 * round, 4 * round + 3).map((e) => `${e.what} ${us(e.begin)}…${us(e.end)}`);
            return {
              round,
              id,
              topic: op.topic ?? '(none)',
              push: `${op.producer} called ${us(op.called)}, resolved ${us(op.resolved)}`,
              timeline,
            };
          }),
      );
      expect(strays).toEqual([]);
      expect(await readdir(join(spool, 'tmp'))).toEqual([]);
      console.log(
        `recreated: ${snapshots.map((s) => s.size).join(',')} messages in the 'orders.*' incarnations, ${inFlight} of them pushes in flight at the creation routed by the old bindings`,
      );
    },
  );
});
