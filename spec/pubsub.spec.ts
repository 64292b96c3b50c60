/**
 * Publish/subscribe through the public API, in one process: routing by topic, bindings, the
 * unrouted, group management, subscribe(), the disk (one inode per message, freed after the last
 * group acks), and the copy fallback forced by failing link() with strace.
 * Several processes: pubsub-processes.spec.ts and pubsub-boundary.spec.ts.
 */
import { execFile, spawnSync } from 'node:child_process';
import { lstat, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { type Message, openQueue, type Queue } from '../lib/index.js';
import { ROUTES_TTL_MS } from '../lib/routing.js';
import { cleanup, FIXTURES, spoolPath, waitFor } from './helpers.js';
import { drain, groupMessageFiles, ROUTES_MARK, readyFiles } from './pubsub-helpers.js';

afterEach(cleanup);

const run = promisify(execFile);
const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
if (!hasStrace) console.log('pubsub.spec: strace is not on PATH, so the forced copy fallback test is skipped');

describe('routing by topic', () => {
  it('each group receives the messages its patterns match, with m.topic', async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null, durability: 'none' });
    const orders = await openQueue(dir, { group: 'orders', topics: ['orders.*'], durability: 'none' });
    const deep = await openQueue(dir, { group: 'deep', topics: ['orders.#', 'invoices.*.paid'], durability: 'none' });
    const all = await openQueue(dir, { group: 'all', durability: 'none' });
    const topics = ['orders.created', 'orders.eu.created', 'invoices.7.paid', 'invoices.7.sent', 'orders', 'misc'];
    for (const topic of topics) await pub.push(topic, { topic });
    await pub.push('no topic');

    expect((await drain(orders)).map((m) => m.data)).toEqual(['orders.created']);
    expect((await drain(deep)).map((m) => m.data)).toEqual(['orders.created', 'orders.eu.created', 'invoices.7.paid', 'orders']);
    const everything = await drain(all);
    expect(everything.map((m) => m.data)).toEqual([...topics, 'no topic']);
    expect(everything.map((m) => m.topic)).toEqual([...topics, undefined]);
    for (const q of [pub, orders, deep, all]) await q.close();
  });

  it('a message without a topic goes only to groups bound to #; one no group matches is counted and dropped', async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null, durability: 'none' });
    const billing = await openQueue(dir, { group: 'billing', topics: ['orders.*'], durability: 'none' });
    await pub.push('a', { topic: 'users.created' });
    await pub.push('b');
    expect(await pub.stats()).toMatchObject({ ready: 0, unrouted: 2 });
    expect(await billing.stats()).toMatchObject({ ready: 0, unrouted: 0 });
    // dropped before anything was written: tmp/ is empty, nothing is anywhere
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await groupMessageFiles(dir)).toEqual([]);
    for (const q of [pub, billing]) await q.close();
  });

  it("the topic '' is a topic (one empty word), not the absence of one", async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null, durability: 'none' });
    const star = await openQueue(dir, { group: 'star', topics: ['*'], durability: 'none' });
    const empty = await openQueue(dir, { group: 'empty', topics: [''], durability: 'none' });
    const words = await openQueue(dir, { group: 'words', topics: ['a.*'], durability: 'none' });
    const all = await openQueue(dir, { group: 'all', durability: 'none' });
    await pub.push('empty topic', { topic: '' });
    await pub.push('no topic');
    expect((await drain(star)).map((m) => [m.data, m.topic])).toEqual([['empty topic', '']]);
    expect((await drain(empty)).map((m) => [m.data, m.topic])).toEqual([['empty topic', '']]);
    expect(await drain(words)).toEqual([]);
    expect((await drain(all)).map((m) => [m.data, m.topic])).toEqual([
      ['empty topic', ''],
      ['no topic', undefined],
    ]);
    expect((await pub.stats()).unrouted).toBe(0);
    for (const q of [pub, star, empty, words, all]) await q.close();
  });

  it("keepUnrouted: what matches no group is kept in the group 'unrouted', which no pattern reaches", async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null, keepUnrouted: true, durability: 'none' });
    const billing = await openQueue(dir, { group: 'billing', topics: ['orders.*'], durability: 'none' });
    await pub.push('routed', { topic: 'orders.paid' });
    await pub.push('lost', { topic: 'users.created' });
    await pub.push('no topic');
    expect((await pub.stats()).unrouted).toBe(2);
    expect(await pub.groups()).toEqual([
      { name: 'billing', topics: ['orders.*'] },
      { name: 'unrouted', topics: [] },
    ]);
    const unrouted = await openQueue(dir, { group: 'unrouted', durability: 'none' });
    expect(await drain(unrouted)).toEqual([
      { data: 'lost', topic: 'users.created' },
      { data: 'no topic', topic: undefined },
    ]);
    expect((await drain(billing)).map((m) => m.data)).toEqual(['routed']);
    await expect(pub.bind('unrouted', ['#'])).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(openQueue(dir, { group: 'unrouted', topics: ['#'] })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    for (const q of [pub, billing, unrouted]) await q.close();
  });

  it('pushMany reaches every matching group whole', async () => {
    const dir = await spoolPath();
    const a = await openQueue(dir, { group: 'a', topics: ['t.*'], durability: 'none' });
    const b = await openQueue(dir, { group: 'b', topics: ['t.#'], durability: 'none' });
    const ids = await a.pushMany([1, 2, 3, 4, 5], { topic: 't.x' });
    expect(ids).toHaveLength(5);
    expect((await drain(a)).map((m) => m.data)).toEqual([1, 2, 3, 4, 5]);
    expect((await drain(b)).map((m) => m.data)).toEqual([1, 2, 3, 4, 5]);
    for (const q of [a, b]) await q.close();
  });
});

describe('bindings', () => {
  it('groups(), bind and unbind: a push called after they resolve is routed by the new bindings', async () => {
    const dir = await spoolPath();
    const admin = await openQueue(dir, { group: null, durability: 'none' });
    const g = await openQueue(dir, { group: 'g', topics: ['a.*'], durability: 'none' });
    expect(await admin.groups()).toEqual([{ name: 'g', topics: ['a.*'] }]);

    await admin.bind('g', ['b.#', 'a.*']); // binding twice is harmless
    expect(await admin.groups()).toEqual([{ name: 'g', topics: ['a.*', 'b.#'] }]);
    await admin.push(1, { topic: 'b.x.y' });
    await admin.unbind('g', ['a.*', 'never.bound']);
    await admin.push(2, { topic: 'a.x' });
    expect((await drain(g)).map((m) => m.data)).toEqual([1]);

    await admin.unbind('g', ['b.#']); // bound to nothing: receives nothing
    expect(await admin.groups()).toEqual([{ name: 'g', topics: [] }]);
    await admin.push(3, { topic: 'b.x' });
    await admin.push(4);
    expect(await drain(g)).toEqual([]);
    expect((await admin.stats()).unrouted).toBe(3);
    for (const q of [admin, g]) await q.close();
  });

  it('openQueue with topics makes the bindings exactly those; without, keeps them', async () => {
    const dir = await spoolPath();
    await (await openQueue(dir, { group: 'g', topics: ['a.*', 'b.*'] })).close();
    await (await openQueue(dir, { group: 'g', topics: ['b.*', 'c.*'] })).close();
    const admin = await openQueue(dir, { group: null });
    expect(await admin.groups()).toEqual([{ name: 'g', topics: ['b.*', 'c.*'] }]);
    await (await openQueue(dir, { group: 'g' })).close();
    expect(await admin.groups()).toEqual([{ name: 'g', topics: ['b.*', 'c.*'] }]);
    await admin.close();
  });

  it('patterns too long for a file name, and characters file systems refuse, are stored and routed', async () => {
    const dir = await spoolPath();
    const long = `${'x/'.repeat(100)}.*`; // '/' encodes to 3 bytes: 300+ bytes, over a file name
    const odd = 'a:b."q".*.#';
    const q = await openQueue(dir, { group: 'g', topics: [long, odd], durability: 'none' });
    expect((await q.groups())[0]?.topics).toEqual([long, odd].sort());
    const names = await readdir(join(dir, 'groups', 'g', 'topics'));
    expect(names.every((n) => Buffer.byteLength(n) <= 255 && !/[*/]/.test(n))).toBe(true);
    expect(names.some((n) => n.startsWith('sha256-'))).toBe(true);
    await q.push(1, { topic: `${'x/'.repeat(100)}.y` });
    await q.push(2, { topic: 'a:b."q".<z>' });
    await q.push(3, { topic: 'a:b."q"' });
    expect((await drain(q)).map((m) => m.data)).toEqual([1, 2]);
    await q.close();
  });

  it('a group made before bindings existed (no topics/) receives everything until bound', async () => {
    const dir = await spoolPath();
    await (await openQueue(dir, { group: 'old', durability: 'none' })).close();
    await rm(join(dir, 'groups', 'old', 'topics'), { recursive: true });
    const admin = await openQueue(dir, { group: null, durability: 'none' });
    expect(await admin.groups()).toEqual([{ name: 'old', topics: ['#'] }]);
    await admin.push(1, { topic: 'x' });
    await admin.bind('old', ['y.*']);
    expect(await admin.groups()).toEqual([{ name: 'old', topics: ['#', 'y.*'] }]);
    await admin.unbind('old', ['#']);
    await admin.push(2, { topic: 'x' });
    await admin.push(3, { topic: 'y.z' });
    const old = await openQueue(dir, { group: 'old', durability: 'none' });
    expect((await drain(old)).map((m) => m.data)).toEqual([1, 3]);
    for (const q of [admin, old]) await q.close();
  });

  it('bad patterns, topics and group names are refused with typed errors, and nothing changes', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { group: 'g', topics: ['a.*'] });
    await expect(openQueue(dir, { group: 'h', topics: ['a*'] })).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    await expect(openQueue(dir, { group: 'h', topics: 'a.*' as never })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(openQueue(dir, { group: null, topics: ['a.*'] })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(q.bind('g', ['ok', 'b.#x'])).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    await expect(q.bind('g', [`${'a'.repeat(256)}`])).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    await expect(q.bind('nope', ['a'])).rejects.toMatchObject({ code: 'EGROUP_NOT_FOUND' });
    await expect(q.bind('../x', ['a'])).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    await expect(q.stats('nope')).rejects.toMatchObject({ code: 'EGROUP_NOT_FOUND' });
    await expect(q.push(1, { topic: 'a.*' })).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    await expect(q.push(1, { topic: 'a\nb' })).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    await expect(q.push(1, { topic: 7 as never })).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    expect(await q.groups()).toEqual([{ name: 'g', topics: ['a.*'] }]);
    expect(await q.stats()).toMatchObject({ ready: 0, unrouted: 0 });
    await q.close();
  });
});

describe('routes cached between publishes', () => {
  const DIST = join(FIXTURES, '..', '..', 'dist', 'index.js');
  /** Runs `code` in another process, with `q` a publish-only handle on `dir`. */
  const elsewhere = (dir: string, code: string) =>
    run(process.execPath, [
      '--input-type=module',
      '-e',
      `const { openQueue } = await import(${JSON.stringify(DIST)});
       const q = await openQueue(${JSON.stringify(dir)}, { group: null, durability: 'none' });
       ${code};
       await q.close();`,
    ]);

  it('a bind, unbind, or delete and re-create in another process is seen by the very next push', async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null, durability: 'none' });
    await (await openQueue(dir, { group: 'g', topics: ['y'], durability: 'none' })).close();
    let bound = false; // whether g is bound to x.* now
    for (let i = 0; i < 8; i++) {
      await pub.push(-1, { topic: 'x.a' }); // the routes are cached now
      const step = i % 4;
      const code = [
        "await q.bind('g', ['x.*'])",
        "await q.unbind('g', ['x.*'])",
        "await q.deleteGroup('g'); await (await openQueue(q.dir, { group: 'g', topics: ['x.*'], durability: 'none' })).close()",
        "await q.deleteGroup('g'); await (await openQueue(q.dir, { group: 'g', topics: ['y'], durability: 'none' })).close()",
      ][step] as string;
      await elsewhere(dir, code);
      await pub.push(i, { topic: 'x.b' });
      // -1 stays in g if g took it and was not deleted since; i only by the new bindings.
      const expected = [...(bound && step < 2 ? [-1] : []), ...(step === 0 || step === 2 ? [i] : [])];
      bound = step === 0 || step === 2;
      const g = await openQueue(dir, { group: 'g', durability: 'none' });
      expect(
        (await drain(g)).map((m) => m.data),
        `step ${i}`,
      ).toEqual(expected);
      await g.close();
    }
    await pub.close();
  });

  it('a binding written without announcing it (its process died first) is seen within ROUTES_TTL_MS', async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null, durability: 'none' });
    await (await openQueue(dir, { group: 'g', topics: ['y'], durability: 'none' })).close();
    await pub.push(0, { topic: 'x' }); // routes cached: g takes only y
    // What bind does, without its last step (the rename of groups/.routes-*).
    await writeFile(join(dir, 'groups', 'g', 'topics', '=x'), '');
    await pub.push(1, { topic: 'x' }); // the cache cannot know yet
    await new Promise((resolve) => setTimeout(resolve, ROUTES_TTL_MS + 50));
    await pub.push(2, { topic: 'x' });
    const g = await openQueue(dir, { group: 'g', durability: 'none' });
    expect((await drain(g)).map((m) => m.data)).toEqual([2]);
    for (const q of [pub, g]) await q.close();
  });
});

describe('groups', () => {
  it('a publish-only handle creates no group and cannot consume', async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null });
    expect(pub.group).toBeNull();
    expect(await pub.groups()).toEqual([]);
    await expect(pub.pop({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    expect(() => pub.consume(async () => {})).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION' }));
    await expect(pub.purge()).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await pub.close();
  });

  it('stats() per group, and summed over the groups for a publish-only handle', async () => {
    const dir = await spoolPath();
    const pub = await openQueue(dir, { group: null, durability: 'none' });
    const a = await openQueue(dir, { group: 'a', topics: ['x'], durability: 'none' });
    const b = await openQueue(dir, { group: 'b', durability: 'none' });
    await pub.push(1, { topic: 'x' });
    await pub.push(2, { topic: 'y' });
    await pub.push(3, { topic: 'x', delayMs: 60_000 });
    expect(await pub.stats('a')).toMatchObject({ ready: 1, delayed: 1 });
    expect(await pub.stats('b')).toMatchObject({ ready: 2, delayed: 1 });
    expect(await pub.stats()).toMatchObject({ ready: 3, delayed: 2, leased: 0, dead: 0, unrouted: 0 });
    const m = (await a.pop({ timeoutMs: 0 })) as Message;
    expect(await pub.stats()).toMatchObject({ ready: 2, leased: 1 });
    await m.ack();
    for (const q of [pub, a, b]) await q.close();
  });

  it('deleteGroup removes a group and its messages; its consumers stop with EGROUP_NOT_FOUND; others carry on', async () => {
    const dir = await spoolPath();
    const admin = await openQueue(dir, { group: 'admin', durability: 'none' });
    const doomed = await openQueue(dir, { group: 'doomed', durability: 'none' });
    await admin.pushMany([1, 2, 3]);
    const errors: string[] = [];
    const consumer = doomed.consume(
      async () => {
        await new Promise((r) => setTimeout(r, 5));
      },
      { onError: (e) => errors.push((e as { code?: string }).code ?? e.message) },
    );
    await waitFor(async () => (await doomed.stats()).ready === 0);

    await expect(admin.deleteGroup('admin')).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    expect(await admin.deleteGroup('doomed')).toBe(true);
    expect(await admin.deleteGroup('doomed')).toBe(false);
    expect(await admin.groups()).toEqual([{ name: 'admin', topics: ['#'] }]);
    expect((await readdir(join(dir, 'groups'))).sort()).toEqual([ROUTES_MARK, 'admin']);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);

    await consumer.closed; // it stops by itself
    expect(errors).toContain('EGROUP_NOT_FOUND');
    await expect(doomed.pop({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'EGROUP_NOT_FOUND' });
    await admin.push(4);
    expect((await drain(admin)).map((m) => m.data)).toEqual([1, 2, 3, 4]);
    for (const q of [admin, doomed]) await q.close();
  });
});

describe('subscribe()', () => {
  it('runs the handler once per matching message in a durable group; a throw retries with backoff', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { group: null, durability: 'none', backoff: { baseMs: 10, maxMs: 20 } });
    const seen: Array<[string | undefined, unknown, number]> = [];
    let failOnce = true;
    const sub = await q.subscribe(
      'orders.#',
      async (m) => {
        seen.push([m.topic, m.data, m.attempts]);
        if (m.data === 'flaky' && failOnce) {
          failOnce = false;
          throw new Error('try again');
        }
      },
      { group: 'email' },
    );
    expect(sub.group).toBe('email');
    expect(sub.topics).toEqual(['orders.#']);
    expect(await q.groups()).toEqual([{ name: 'email', topics: ['orders.#'] }]);
    await q.push('one', { topic: 'orders.created' });
    await q.push('skip', { topic: 'users.created' });
    await q.push('flaky', { topic: 'orders.paid.eu' });
    await waitFor(() => seen.length === 3);
    expect(seen).toEqual([
      ['orders.created', 'one', 1],
      ['orders.paid.eu', 'flaky', 1],
      ['orders.paid.eu', 'flaky', 2],
    ]);
    await sub.close();
    // The group keeps what arrives while nobody subscribes, for the next subscriber.
    await q.push('while away', { topic: 'orders.x' });
    const again: unknown[] = [];
    const sub2 = await q.subscribe(['orders.#'], async (m) => void again.push(m.data), { group: 'email' });
    await waitFor(() => again.length === 1);
    expect(again).toEqual(['while away']);
    await q.close(); // closes its subscriptions
    await sub2.closed;
  });

  it("on the handle's own group, rebinds it; a publish-only handle needs a group", async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { group: 'audit', durability: 'none' });
    const got: unknown[] = [];
    const sub = await q.subscribe(['a.*', 'b'], async (m) => void got.push(m.data));
    expect(sub.group).toBe('audit');
    expect(await q.groups()).toEqual([{ name: 'audit', topics: ['a.*', 'b'] }]);
    await q.push(1, { topic: 'c' });
    await q.push(2, { topic: 'b' });
    await waitFor(() => got.length === 1);
    await sub.close();
    expect(got).toEqual([2]);
    const pub = await openQueue(dir, { group: null });
    await expect(pub.subscribe('#', async () => {})).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(q.subscribe('a*', async () => {})).rejects.toMatchObject({ code: 'EINVALID_NAME' });
    for (const h of [q, pub]) await h.close();
  });
});

describe('on disk', () => {
  it('a message for 3 groups is one inode with 3 links; each ack removes one; the last frees it', async () => {
    const dir = await spoolPath();
    const groups = await Promise.all(['a', 'b', 'c'].map((group) => openQueue(dir, { group, durability: 'none' })));
    const only = await openQueue(dir, { group: 'd', topics: ['nothing'], durability: 'none' });
    const id = await (groups[0] as Queue).push('shared', { topic: 'x' });
    const paths = await Promise.all(['a', 'b', 'c'].map(async (g) => (await readyFiles(dir, g)).get(id) as string));
    const stats = await Promise.all(paths.map((p) => lstat(p)));
    expect(new Set(stats.map((s) => s.ino)).size).toBe(1);
    expect(stats.map((s) => s.nlink)).toEqual([3, 3, 3]);
    expect(await readyFiles(dir, 'd')).toEqual(new Map());
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);

    const ack = async (q: Queue) => (await q.pop({ timeoutMs: 0 }))?.ack();
    await ack(groups[0] as Queue);
    expect((await lstat(paths[1] as string)).nlink).toBe(2);
    await ack(groups[1] as Queue);
    expect((await lstat(paths[2] as string)).nlink).toBe(1);
    await ack(groups[2] as Queue);
    await expect(lstat(paths[2] as string)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await groupMessageFiles(dir)).toEqual([]);
    for (const q of [...groups, only]) await q.close();
  });

  it.skipIf(!hasStrace)('without hard links (link() fails with EPERM): each group gets a full copy, nothing is lost or left', async () => {
    const dir = await spoolPath();
    const setup = await Promise.all(['a', 'b', 'c'].map((group) => openQueue(dir, { group, codec: 'raw' })));
    const trace = join(dir, '..', 'strace.out');
    const { stdout } = await run('strace', [
      '-f',
      '-qq',
      '-o',
      trace,
      '-e',
      'trace=link,linkat',
      '-e',
      'inject=link,linkat:error=EPERM',
      process.execPath,
      join(FIXTURES, 'fanout-push.mjs'),
      dir,
      '10',
    ]);
    const { ids } = JSON.parse(stdout) as { ids: string[] };
    expect(ids).toHaveLength(13);
    const injected = (await readFile(trace, 'utf8')).split('\n').filter((l) => l.includes('EPERM (Operation not permitted) (INJECTED)'));
    expect(injected.length, 'link() was tried and failed').toBeGreaterThan(0);

    const inodes = new Set<number>();
    for (const group of ['a', 'b', 'c']) {
      const files = await readyFiles(dir, group);
      expect([...files.keys()].sort()).toEqual([...ids].sort());
      // 10 pushes, 10 files; the pushMany of 3 is one envelope, copied whole
      expect(new Set(files.values()).size).toBe(11);
      for (const path of new Set(files.values())) {
        const info = await lstat(path);
        expect(info.nlink).toBe(1);
        inodes.add(info.ino);
      }
    }
    expect(inodes.size, 'three separate copies of each file').toBe(3 * 11);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    for (const q of setup) {
      const bodies: string[] = [];
      for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
        bodies.push(m.body.toString());
        await m.ack();
      }
      expect(bodies).toEqual([...Array.from({ length: 10 }, (_, i) => `message ${i}`), 'many 0', 'many 1', 'many 2']);
      await q.close();
    }
    expect(await groupMessageFiles(dir)).toEqual([]);
  });
});
