/**
 * Publish/subscribe across real processes: several producer processes publish with topics into
 * groups bound to different, overlapping patterns, and one consumer process per group acks what
 * it receives. Checked against the producers' own record of what they pushed (ids and topics),
 * with a topic matcher written here independently of lib/topics.ts:
 *   - each group receives exactly the messages its patterns match, each once, with m.topic;
 *   - acking in one group never touches another (a group whose consumer has not run yet still
 *     holds all of its messages);
 *   - the data is on disk once: a message routed to k groups is one inode with k names
 *     (st_nlink === k), each ack removes one name, the last one frees it;
 *   - pushes that match no group are counted in the pushing handle's stats().unrouted, dropped,
 *     or kept in the group 'unrouted' by a producer opened with keepUnrouted.
 *
 * Children are spec/fixtures/pubsub-producer.mjs and pubsub-consumer.mjs (importing dist/).
 * Nothing here is timed: every wait is for a condition, with a generous deadline.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { useHarness } from './harness.js';
import { type Child, listFiles, spoolPath, waitFor, within } from './helpers.js';
import { matches, readyFiles } from './pubsub-helpers.js';

const { spawn, open } = useHarness({ durability: 'none' });

const SLOW = { timeout: 90_000 };

const routedTo = (patterns: readonly string[], topic: string | undefined) => patterns.some((p) => matches(p, topic));

interface Pushed {
  producer: string;
  seq: number;
  id: string;
  topic: string | undefined;
}

/** The pushes a pubsub-producer.mjs child printed ("P {…}" lines). */
function pushes(child: Child, producer: string): Pushed[] {
  return child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('P '))
    .map((l) => {
      const { seq, id, topic } = JSON.parse(l.slice(2));
      return { producer, seq, id, topic };
    });
}

interface Delivery {
  id: string;
  attempts: number;
  topic: string | undefined;
  data: { p: string; seq: number };
}

/** The acked deliveries of a pubsub-consumer.mjs child ("M {…}" lines). */
function deliveries(child: Child): Delivery[] {
  return child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('M '))
    .map((l) => JSON.parse(l.slice(2)));
}

const errorLines = (child: Child) =>
  child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('E '));

function doneLine(child: Child): { unrouted: number } {
  const line = child
    .stdout()
    .split('\n')
    .find((l) => l.startsWith('done '));
  if (!line) throw new Error(`no done line; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
  return JSON.parse(line.slice(5));
}

/** Runs a producer to its end; it must exit 0 with nothing on stderr and no failed push. */
async function finished(child: Child): Promise<void> {
  const code = await within(child.exited, 60_000, 'producer exit');
  expect({ code, stderr: child.stderr(), errors: errorLines(child) }).toEqual({ code: 0, stderr: '', errors: [] });
}

/** Starts a consumer process of `group` and waits until it is up (watching, first look done). */
async function startConsumer(spool: string, group: string, concurrency: number): Promise<Child> {
  const child = spawn('pubsub-consumer.mjs', [spool, group, String(concurrency)]);
  await child.line((l) => l === `ready ${group}`);
  return child;
}

/** Waits until `child` acked `count` messages, then stops it (SIGTERM: close, exit 0 by itself). */
async function consumeAll(child: Child, count: number): Promise<Delivery[]> {
  await waitFor(() => deliveries(child).length >= count, 40_000, 25).catch(() => {
    throw new Error(
      `only ${deliveries(child).length} of ${count} acked; stdout tail:\n${child.stdout().slice(-2000)}\nstderr:\n${child.stderr()}`,
    );
  });
  child.proc.kill('SIGTERM');
  expect(await within(child.exited, 10_000, 'consumer exit after SIGTERM')).toBe(0);
  expect(child.stdout()).toContain('\nclosed\n');
  expect({ errors: errorLines(child), stderr: child.stderr() }).toEqual({ errors: [], stderr: '' });
  // Closed: anything delivered twice is in the output by now.
  return deliveries(child);
}

/** Each delivery is a distinct expected message, with the topic and data it was pushed with. */
function checkDeliveries(got: Delivery[], expected: ReadonlySet<string>, byId: ReadonlyMap<string, Pushed>): void {
  const ids = got.map((d) => d.id);
  const seen = new Set<string>();
  expect(ids.filter((id) => seen.has(id) || !seen.add(id))).toEqual([]); // no duplicates
  expect(new Set(ids)).toEqual(expected);
  expect(got.filter((d) => d.attempts !== 1)).toEqual([]); // no crash, no expiry: first deliveries only
  for (const d of got) {
    const p = byId.get(d.id) as Pushed;
    expect({ id: d.id, topic: d.topic, data: d.data }).toEqual({ id: d.id, topic: p.topic, data: { p: p.producer, seq: p.seq } });
  }
}

/** With one consumer at concurrency 1: each producer's messages arrive in push order. */
function checkFifo(got: Delivery[]): void {
  for (const producer of new Set(got.map((d) => d.data.p))) {
    const seqs = got.filter((d) => d.data.p === producer).map((d) => d.data.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  }
}

/** Files that are messages or parts of one: anything in tmp/, and in a group's ready/, leased/, dead/. */
async function messageFiles(spool: string): Promise<string[]> {
  return (await listFiles(spool)).filter((f) => /^(tmp\/|groups\/[^/]+\/(ready|leased|dead)\/)/.test(f));
}

/**
 * Every name of every message in `groups`: the names of one message share one inode, and its
 * link count is the number of groups holding it, `links(id)`.
 */
async function checkLinks(spool: string, groups: readonly string[], links: (id: string) => number): Promise<number> {
  const names = new Map<string, string[]>();
  for (const g of groups) for (const [id, path] of await readyFiles(spool, g)) names.set(id, [...(names.get(id) ?? []), path]);
  const wrong: unknown[] = [];
  const inodes = new Set<number>();
  for (const [id, paths] of names) {
    const stats = await Promise.all(paths.map((p) => lstat(p)));
    const ino = new Set(stats.map((s) => s.ino));
    for (const s of stats) inodes.add(s.ino);
    if (ino.size !== 1 || stats.some((s) => !s.isFile() || s.nlink !== links(id)) || paths.length !== links(id)) {
      wrong.push({ id, paths, inodes: [...ino], nlinks: stats.map((s) => s.nlink), expected: links(id) });
    }
  }
  expect(wrong).toEqual([]);
  expect(inodes.size).toBe(names.size); // no two messages share an inode either
  return names.size;
}

/** Topics the producers draw from; null is a push without a topic. */
const TOPICS = [
  'orders.created',
  'orders.shipped',
  'orders.eu.created',
  'orders',
  'invoices.7',
  'invoices.7.paid',
  'users.signup',
  '',
  null,
];

describe('3 groups, 2 producer processes, a consumer process per group', () => {
  it(
    'each group gets exactly what its patterns match, once; an ack in one group never touches another; one inode per message',
    SLOW,
    async () => {
      const spool = await spoolPath();
      const BINDINGS: Record<string, string[]> = { A: ['orders.*'], B: ['invoices.*', 'orders.#'], C: ['#'] };
      const groups = Object.keys(BINDINGS);
      // The groups exist, bound, before the first push; then their handles are closed: the
      // consumer processes open them later, keeping their bindings.
      for (const g of groups) await (await openQueue(spool, { group: g, topics: BINDINGS[g], durability: 'none' })).close();
      const admin = await open(spool, { group: null });
      expect(await admin.groups()).toEqual(groups.map((name) => ({ name, topics: BINDINGS[name] })));

      const PER_PRODUCER = 1_000;
      const t0 = Date.now();
      const producers = [
        spawn('pubsub-producer.mjs', [spool, 'p1', String(PER_PRODUCER), JSON.stringify({ topics: TOPICS, seed: 1, durability: 'fsync' })]),
        spawn('pubsub-producer.mjs', [spool, 'p2', String(PER_PRODUCER), JSON.stringify({ topics: TOPICS, seed: 2, durability: 'none' })]),
      ];
      for (const p of producers) await finished(p);
      const pushMs = Date.now() - t0;
      const pushed = [...pushes(producers[0] as Child, 'p1'), ...pushes(producers[1] as Child, 'p2')];
      expect(pushed).toHaveLength(2 * PER_PRODUCER);
      const byId = new Map(pushed.map((p) => [p.id, p]));
      expect(byId.size).toBe(pushed.length);
      // Every topic of the list was drawn (the seeds make this a fixed fact, checked for the reader).
      expect(new Set(pushed.map((p) => p.topic ?? null))).toEqual(new Set(TOPICS));
      // C is bound to '#': nothing is unrouted.
      for (const p of producers) expect(doneLine(p)).toEqual({ unrouted: 0 });

      const expected = Object.fromEntries(
        groups.map((g) => [g, new Set(pushed.filter((p) => routedTo(BINDINGS[g] as string[], p.topic)).map((p) => p.id))]),
      ) as Record<string, Set<string>>;
      const k = (id: string) => groups.filter((g) => expected[g]?.has(id)).length;
      const only = (g: string) => expected[g] as Set<string>;
      // The topic list makes each case occur: k = 3, 2 and 1, and topics outside A and B.
      expect(new Set(pushed.map((p) => k(p.id)))).toEqual(new Set([1, 2, 3]));

      // Before any consumer runs: each group holds exactly its messages; one inode per message,
      // with one name per group it was routed to.
      for (const g of groups) expect(new Set((await readyFiles(spool, g)).keys())).toEqual(only(g));
      expect(await checkLinks(spool, groups, k)).toBe(pushed.length);
      expect(await readdir(join(spool, 'tmp'))).toEqual([]);
      for (const g of groups) expect(await admin.stats(g)).toMatchObject({ ready: only(g).size, leased: 0, dead: 0 });

      // A consumes and acks everything; B and C are untouched, each message has one link fewer.
      const a = await consumeAll(await startConsumer(spool, 'A', 1), only('A').size);
      checkDeliveries(a, only('A'), byId);
      checkFifo(a);
      expect(await admin.stats('A')).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
      for (const g of ['B', 'C']) expect(new Set((await readyFiles(spool, g)).keys())).toEqual(only(g));
      expect(await admin.stats('C')).toMatchObject({ ready: only('C').size, leased: 0, dead: 0 });
      await checkLinks(spool, ['B', 'C'], (id) => k(id) - (only('A').has(id) ? 1 : 0));

      // B (two handlers at once): C still holds all its messages, each now with a single name.
      const b = await consumeAll(await startConsumer(spool, 'B', 2), only('B').size);
      checkDeliveries(b, only('B'), byId);
      expect(new Set((await readyFiles(spool, 'C')).keys())).toEqual(only('C'));
      await checkLinks(spool, ['C'], () => 1);

      // C, the last group: after its acks no name of any message is left anywhere.
      const c = await consumeAll(await startConsumer(spool, 'C', 1), only('C').size);
      checkDeliveries(c, only('C'), byId);
      checkFifo(c);
      expect(await messageFiles(spool)).toEqual([]);
      for (const g of groups) expect(await admin.stats(g)).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
      const counts = groups.map((g) => `${g} ${only(g).size}`).join(', ');
      console.log(`pubsub processes: 2 × ${PER_PRODUCER} pushed in ${pushMs} ms (p1 fsync, p2 none); delivered ${counts}`);
    },
  );

  it('with consumers running during the pushes and no group bound to #: the unrouted are counted, dropped or kept', SLOW, async () => {
    const spool = await spoolPath();
    const BINDINGS: Record<string, string[]> = { A: ['orders.*'], B: ['invoices.*', 'orders.#'], U: ['*.created', 'users.#'] };
    const groups = Object.keys(BINDINGS);
    for (const g of groups) await (await openQueue(spool, { group: g, topics: BINDINGS[g], durability: 'none' })).close();
    // The group 'unrouted' exists before its consumer starts: made by a handle with keepUnrouted.
    const admin = await open(spool, { group: null, keepUnrouted: true });
    expect(await admin.groups()).toEqual([...groups.map((name) => ({ name, topics: BINDINGS[name] })), { name: 'unrouted', topics: [] }]);

    const consumers = {
      A: await startConsumer(spool, 'A', 2),
      B: await startConsumer(spool, 'B', 2),
      U: await startConsumer(spool, 'U', 1),
      unrouted: await startConsumer(spool, 'unrouted', 1),
    };
    const PER_PRODUCER = 500;
    // p1 drops what matches no group; p2 keeps it in 'unrouted'.
    const p1 = spawn('pubsub-producer.mjs', [spool, 'p1', String(PER_PRODUCER), JSON.stringify({ topics: TOPICS, seed: 3 })]);
    const p2 = spawn('pubsub-producer.mjs', [
      spool,
      'p2',
      String(PER_PRODUCER),
      JSON.stringify({ topics: TOPICS, seed: 4, keepUnrouted: true }),
    ]);
    for (const p of [p1, p2]) await finished(p);
    const pushed = [...pushes(p1, 'p1'), ...pushes(p2, 'p2')];
    expect(pushed).toHaveLength(2 * PER_PRODUCER);
    const byId = new Map(pushed.map((p) => [p.id, p]));

    const isUnrouted = (p: Pushed) => !groups.some((g) => routedTo(BINDINGS[g] as string[], p.topic));
    const unrouted1 = pushes(p1, 'p1').filter(isUnrouted);
    const unrouted2 = pushes(p2, 'p2').filter(isUnrouted);
    // Without a topic, '' and 'invoices.7.paid' match none of the three.
    expect(new Set([...unrouted1, ...unrouted2].map((p) => p.topic ?? null))).toEqual(new Set([null, '', 'invoices.7.paid']));
    expect(doneLine(p1)).toEqual({ unrouted: unrouted1.length });
    expect(doneLine(p2)).toEqual({ unrouted: unrouted2.length });

    const expected: Record<string, Set<string>> = {
      ...Object.fromEntries(
        groups.map((g) => [g, new Set(pushed.filter((p) => routedTo(BINDINGS[g] as string[], p.topic)).map((p) => p.id))]),
      ),
      unrouted: new Set(unrouted2.map((p) => p.id)), // p2's only: p1's were dropped
    };
    for (const [g, child] of Object.entries(consumers)) {
      const got = await consumeAll(child, (expected[g] as Set<string>).size);
      checkDeliveries(got, expected[g] as Set<string>, byId);
      if (g === 'U' || g === 'unrouted') checkFifo(got);
    }
    // p1's unrouted pushes were never written: nothing is left anywhere, tmp/ included.
    expect(await messageFiles(spool)).toEqual([]);
    expect(await admin.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0, unrouted: 0 });
    console.log(
      `pubsub unrouted: p1 dropped ${unrouted1.length}, p2 kept ${unrouted2.length} in 'unrouted'; ` +
        `delivered ${Object.entries(expected)
          .map(([g, s]) => `${g} ${s.size}`)
          .join(', ')}`,
    );
  });
});
