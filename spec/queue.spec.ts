import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DoorbellRinger } from '../lib/doorbell.js';
import { PRIVATE_MODES } from '../lib/durable-fs.js';
import { openQueue, SpoolqError } from '../lib/index.js';
import { cleanup, spoolPath, tempDir } from './helpers.js';

afterEach(cleanup);

describe('push and pop', () => {
  it('delivers data, body, id, attempts, enqueuedAt, priority and headers', async () => {
    const q = await openQueue<{ n: number }>(await spoolPath(), { durability: 'none' });
    const before = Date.now();
    const id = await q.push({ n: 1 }, { headers: { trace: 'abc' } });
    const m = await q.pop({ timeoutMs: 0 });
    expect(m).not.toBeNull();
    expect(m?.id).toBe(id);
    expect(m?.data).toEqual({ n: 1 });
    expect(m?.body.toString()).toBe('{"n":1}');
    expect(m?.attempts).toBe(1);
    expect(m?.priority).toBe(4);
    expect(m?.headers).toEqual({ trace: 'abc' });
    expect(m?.enqueuedAt).toBeGreaterThanOrEqual(before);
    await m?.ack();
    expect(await q.pop({ timeoutMs: 0 })).toBeNull();
    await q.close();
  });

  it('raw codec takes strings and bytes and gives Buffers', async () => {
    const q = await openQueue(await spoolPath(), { codec: 'raw', durability: 'none' });
    await q.push('text');
    await q.push(new Uint8Array([0, 255, 7]));
    const a = await q.pop({ timeoutMs: 0 });
    const b = await q.pop({ timeoutMs: 0 });
    expect(Buffer.isBuffer(a?.data)).toBe(true);
    expect(a?.data.toString()).toBe('text');
    expect([...(b?.body ?? [])]).toEqual([0, 255, 7]);
    await q.close();
  });

  it('pop waits for a push and honours timeoutMs and the abort signal', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    const t0 = Date.now();
    expect(await q.pop({ timeoutMs: 150 })).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);

    const waiting = q.pop();
    setTimeout(() => void q.push('late'), 50);
    expect((await waiting)?.data).toBe('late');

    const ac = new AbortController();
    const aborted = q.pop({ signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    await expect(q.pop({ signal: AbortSignal.abort() })).rejects.toThrow();
    await q.close();
  });

  it('pushMany publishes in order and returns the ids', async () => {
    const q = await openQueue(await spoolPath());
    const ids = await q.pushMany(Array.from({ length: 50 }, (_, i) => i));
    expect(new Set(ids).size).toBe(50);
    for (let i = 0; i < 50; i++) {
      const m = await q.pop({ timeoutMs: 0 });
      expect(m?.data).toBe(i);
      expect(m?.id).toBe(ids[i]);
      await m?.ack();
    }
    await q.close();
  });
});

describe('push errors', () => {
  it('a push into a spool whose groups/ was removed rejects with EPUBLISH, not a raw errno error', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { durability: 'none' });
    await rm(join(dir, 'groups'), { recursive: true });
    const error = await q.push(1).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SpoolqError);
    expect(error).toMatchObject({ code: 'EPUBLISH' });
    expect((error as Error).message).toMatch(/ENOENT while reading the groups/);
    await q.close();
  });
});

describe('order', () => {
  it('delivers priority 0 before 4 before 9, FIFO within a priority', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    const pushed: Array<[number, string]> = [];
    for (let i = 0; i < 30; i++) {
      const priority = [9, 4, 0][i % 3] as number;
      await q.push(`${priority}:${i}`, { priority });
      pushed.push([priority, `${priority}:${i}`]);
    }
    const expected = pushed.sort((a, b) => a[0] - b[0]).map(([, v]) => v); // stable sort keeps push order
    const got: string[] = [];
    for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
      got.push(m.data as string);
      await m.ack();
    }
    expect(got).toEqual(expected);
    await q.close();
  });

  it('keeps strict FIFO per producer when pushes overlap each other and a running consumer', async () => {
    const dir = await spoolPath();
    // fsync: data syncs of concurrent pushes finish out of order, which is what could reorder links
    const producer = await openQueue<number>(dir, { durability: 'fsync' });
    const consumer = await openQueue<number>(dir, { durability: 'none' });
    const got: number[] = [];
    const draining = (async () => {
      while (got.length < 400) {
        const m = await consumer.pop({ timeoutMs: 5_000 });
        if (!m) break;
        got.push(m.data);
        await m.ack();
      }
    })();
    const pushes: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) pushes.push(producer.push(i)); // not awaited one by one
    pushes.push(producer.pushMany(Array.from({ length: 200 }, (_, i) => 200 + i)));
    await Promise.all(pushes);
    await draining;
    expect(got).toEqual(Array.from({ length: 400 }, (_, i) => i));
    await producer.close();
    await consumer.close();
  });

  it('does not deliver a delayed message before it is due, and delivers it within 100 ms after', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    const pushedAt = Date.now();
    await q.push('later', { delayMs: 400 });
    await q.push('now');
    const first = await q.pop({ timeoutMs: 0 });
    expect(first?.data).toBe('now');
    await first?.ack();
    expect(await q.pop({ timeoutMs: 0 })).toBeNull();
    expect((await q.stats()).delayed).toBe(1);
    const m = await q.pop({ timeoutMs: 5_000 });
    const deliveredAt = Date.now();
    expect(m?.data).toBe('later');
    expect(deliveredAt - pushedAt).toBeGreaterThanOrEqual(400);
    expect(deliveredAt - (pushedAt + 400)).toBeLessThan(100);
    await q.close();
  });

  it('a higher priority pushed while a consumer is busy overtakes the backlog', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    await q.pushMany(
      Array.from({ length: 20 }, (_, i) => `low-${i}`),
      { priority: 9 },
    );
    const first = await q.pop({ timeoutMs: 0 });
    await first?.ack();
    await q.push('urgent', { priority: 0 });
    // A ring makes a busy consumer re-read its directory at most every 50-500 ms (20x its last scan).
    await new Promise((r) => setTimeout(r, 600));
    const next = await q.pop({ timeoutMs: 0 });
    expect(next?.data).toBe('urgent');
    await q.close();
  });
});

describe('consume and messages', () => {
  it('consume acks on resolve and retries on throw with attempts + 1', async () => {
    const q = await openQueue<string>(await spoolPath(), { durability: 'none', backoff: { baseMs: 10, maxMs: 20 } });
    await q.pushMany(['a', 'b', 'fail-once']);
    const seen: string[] = [];
    let allSeen!: () => void;
    const done = new Promise<void>((resolve) => {
      allSeen = resolve;
    });
    const consumer = q.consume(
      async (m) => {
        seen.push(`${m.data}#${m.attempts}`);
        if (m.data === 'fail-once' && m.attempts === 1) throw new Error('boom');
        if (seen.length === 4) allSeen();
      },
      { concurrency: 2 },
    );
    await done;
    await consumer.close();
    expect(seen.sort()).toEqual(['a#1', 'b#1', 'fail-once#1', 'fail-once#2']);
    await q.close();
    const stats = await (await openQueue(q.dir)).stats();
    expect(stats).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
  });

  it('consume extends the lease of a long handler so it is not redelivered', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none', leaseMs: 150 });
    const other = await openQueue(q.dir, { durability: 'none', leaseMs: 150 });
    await q.push('slow');
    let calls = 0;
    const finished = new Promise<void>((resolve) => {
      q.consume(async () => {
        calls++;
        expect(await other.pop({ timeoutMs: 600 })).toBeNull(); // 4 leases long: still ours
        resolve();
      });
    });
    await finished;
    await q.close();
    expect(calls).toBe(1);
    expect((await other.stats()).leased).toBe(0);
    await other.close();
  });

  it('consume close() waits for running handlers; the signal closes it too', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    await q.push('x');
    let finished = false;
    let started!: () => void;
    const running = new Promise<void>((r) => {
      started = r;
    });
    const ac = new AbortController();
    const consumer = q.consume(
      async () => {
        started();
        await new Promise((r) => setTimeout(r, 100));
        finished = true;
      },
      { signal: ac.signal },
    );
    await running;
    ac.abort();
    await consumer.close();
    expect(finished).toBe(true);
    expect(consumer.close()).toBe(consumer.close());
    expect((await q.stats()).ready + (await q.stats()).leased).toBe(0);
    await q.close();
  });

  it('a handler may ack or nack its message itself: no second settle, no spurious error', async () => {
    const q = await openQueue<string>(await spoolPath(), { durability: 'none', leaseMs: 60 });
    await q.pushMany(['ack-myself', 'nack-myself']);
    const errors: Error[] = [];
    const handled: string[] = [];
    const ac = new AbortController();
    const consumer = q.consume(
      async (m) => {
        if (m.data === 'ack-myself') await m.ack();
        else await m.nack({ delayMs: 60_000 });
        await new Promise((r) => setTimeout(r, 100)); // past a keep-alive tick (leaseMs / 3)
        handled.push(m.data);
        if (handled.length === 2) ac.abort();
      },
      { concurrency: 2, signal: ac.signal, onError: (e) => errors.push(e) },
    );
    await consumer.closed;
    expect(handled.sort()).toEqual(['ack-myself', 'nack-myself']);
    expect(errors).toEqual([]);
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 1 });
    expect(EventEmitter.getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    await q.close();
  });

  it('messages() yields until the signal aborts', async () => {
    const q = await openQueue<number>(await spoolPath(), { durability: 'none' });
    await q.pushMany([1, 2, 3]);
    const ac = new AbortController();
    const got: number[] = [];
    for await (const m of q.messages({ signal: ac.signal })) {
      got.push(m.data);
      await m.ack();
      if (got.length === 3) setTimeout(() => ac.abort(), 20);
    }
    expect(got).toEqual([1, 2, 3]);
    await q.close();
  });
});

describe('stats, purge, close', () => {
  it('counts ready, leased, delayed and the age of the oldest ready message', async () => {
    // one file per message (envelopes.spec.ts counts envelopes)
    const q = await openQueue(await spoolPath(), { durability: 'none', envelopes: false });
    await q.pushMany([1, 2, 3]);
    await q.push(4, { delayMs: 60_000 });
    const m = await q.pop({ timeoutMs: 0 });
    await new Promise((r) => setTimeout(r, 20));
    const stats = await q.stats();
    expect(stats).toMatchObject({ ready: 2, leased: 1, delayed: 1, dead: 0 });
    expect(stats.oldestReadyAgeMs).toBeGreaterThanOrEqual(15);
    await m?.ack();
    expect(await q.purge()).toBe(3);
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, oldestReadyAgeMs: null });
    await q.close();
  });

  it('purge and requeueDead report progress (done, total) up to (n, n)', async () => {
    // progress counts files: one per message here
    const q = await openQueue(await spoolPath(), { durability: 'none', maxAttempts: 1, envelopes: false });
    await q.pushMany([1, 2, 3, 4]);
    for (let i = 0; i < 2; i++) await (await q.pop({ timeoutMs: 0 }))?.nack({ delayMs: 0 }); // out of attempts: dead
    const requeueSteps: Array<[number, number]> = [];
    expect(await q.requeueDead(undefined, { onProgress: (done, total) => requeueSteps.push([done, total]) })).toHaveLength(2);
    expect(requeueSteps).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
    const purgeSteps: Array<[number, number]> = [];
    expect(await q.purge({ onProgress: (done, total) => purgeSteps.push([done, total]) })).toBe(4);
    expect(purgeSteps).toEqual([0, 1, 2, 3, 4].map((done) => [done, 4]));
    await expect(q.purge({ onProgress: 'no' as never })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await q.close();
  });

  it('close() is idempotent and later calls reject with ECLOSED', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    const waiting = q.pop();
    const closing = q.close();
    expect(q.close()).toBe(closing);
    await closing;
    expect(await waiting).toBeNull();
    await expect(q.push(1)).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(q.pop()).rejects.toMatchObject({ code: 'ECLOSED' }); // a rejection, not a throw
  });

  it('a push after close() rejects with ECLOSED and publishes nothing', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { durability: 'none' });
    await q.close();
    await expect(q.push(1)).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(q.pushMany([1, 2])).rejects.toMatchObject({ code: 'ECLOSED' });
    const again = await openQueue(dir, { durability: 'none' });
    expect(await again.pop({ timeoutMs: 0 })).toBeNull();
    await again.close();
  });

  it('close() waits for publishes in flight: they are all there afterwards', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir);
    const pushes = Array.from({ length: 20 }, (_, i) => q.push(i));
    await q.close();
    const ids = await Promise.all(pushes);
    const again = await openQueue(dir);
    expect((await again.stats()).ready).toBe(ids.length);
    await again.close();
  });

  it('a message can be acked after its queue handle closed', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    await q.push(1);
    const m = await q.pop({ timeoutMs: 0 });
    await q.close();
    await m?.ack();
    const again = await openQueue(q.dir, { durability: 'none' });
    expect((await again.stats()).leased).toBe(0);
    await again.close();
  });
});

describe('doorbell rings', () => {
  it('a folded ring still goes when the process calls process.exit() right after its pushes resolved', async () => {
    const spool = await spoolPath();
    const consumer = await openQueue(spool, { durability: 'none' });
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const code = `const { openQueue } = await import(${JSON.stringify(dist)});
      const q = await openQueue(process.argv[1], { durability: 'none', group: null });
      await q.push(1); await q.push(2); // the second ring is folded: due at the end of the ms
      process.exit(0);`;
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code, spool]);
    // Its doorbell file is named <owner>-<rings - 1, base 36>: both commits rang.
    expect(readdirSync(join(spool, 'groups/default/doorbell')).map((n) => n.split('-').at(-1))).toEqual(['1']);
    await consumer.close();
  });

  it('a durable producer rings at every commit, before the push resolves: its rings are not folded', async () => {
    const spool = await spoolPath();
    const consumer = await openQueue(spool, { durability: 'none' });
    const producer = await openQueue(spool, { durability: 'fsync', group: null });
    const doorbell = join(spool, 'groups/default/doorbell');
    const rings = () => readdirSync(doorbell).map((n) => Number.parseInt(n.split('-').at(-1) as string, 36) + 1);
    for (let i = 1; i <= 3; i++) {
      // A durable push takes well under 1 ms here, so a folded ring would still wait (where one
      // takes 1 ms or more, folding would ring at once too: ring-timing.spec checks the order).
      await producer.push(i);
      expect(rings(), `after push ${i}`).toEqual([i]);
    }
    await producer.close();
    await consumer.close();
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('a ring within 1 ms of the last is folded into one at the end of that ms; flush() rings at once', async () => {
    const dir = await tempDir('spoolq-ring-');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const ringer = new DoorbellRinger(PRIVATE_MODES);
    /** How many times the doorbell was rung: its file is named <owner>-<rings - 1, base 36>. */
    const rings = () => readdirSync(dir).map((n) => Number.parseInt(n.split('-').at(-1) as string, 36) + 1);
    ringer.ring(dir);
    expect(rings()).toEqual([1]);
    vi.advanceTimersByTime(0.5);
    for (let i = 0; i < 9; i++) ringer.ring(dir);
    expect(rings(), 'within the ms: not now').toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(rings(), 'the 9, as one ring at the end of the ms').toEqual([2]);
    vi.advanceTimersByTime(5);
    ringer.ring(dir); // long after the last: at once
    expect(rings()).toEqual([3]);
    ringer.ring(dir);
    ringer.flush();
    expect(rings(), 'flush rings what waits').toEqual([4]);
    vi.advanceTimersByTime(5);
    expect(rings(), 'and leaves nothing pending').toEqual([4]);
  });
});
