/**
 * Several real processes on one spool: competing consumers, FIFO per producer, lease expiry
 * after a crash, fencing of a lost lease, wake-up across processes (watch events on the O(1)
 * doorbell, polling, the reconciliation scan) and close() hygiene.
 *
 * Children are the fixtures spec/fixtures/proc-*.mjs, importing the built library (dist/).
 * Timing assertions are one-sided and generous (2-core machines shared with other test runs):
 * they wait with deadlines and never rely on a fixed sleep being long enough.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { useHarness } from './harness.js';
import { type Child, listFiles, spoolPath, waitFor, within } from './helpers.js';

const { spawn, open } = useHarness({ durability: 'none' });

/** For the tests that move thousands of messages through several processes on a busy machine. */
const SLOW = { timeout: 120_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The JSON events a fixture printed, one per line. */
function events(child: Child): Array<Record<string, any>> {
  return child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

/** Waits for the `n`-th (0-based) JSON event named `name`. */
async function event(child: Child, name: string, n = 0, timeoutMs = 20_000): Promise<Record<string, any>> {
  const found = await waitFor(() => events(child).filter((e) => e.event === name)[n], timeoutMs).catch(() => {
    throw new Error(`no event ${name}#${n} within ${timeoutMs} ms; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
  });
  return found as Record<string, any>;
}

/** Asks a fixture to stop with SIGTERM; it must close and exit 0 on its own. */
async function stop(child: Child, timeoutMs = 10_000): Promise<void> {
  child.proc.kill('SIGTERM');
  expect(await within(child.exited, timeoutMs, 'exit after SIGTERM')).toBe(0);
}

/** Lines "M <producer> <seq> <attempts> <id>" of a proc-consumer.mjs child: its acked deliveries. */
function deliveries(child: Child): Array<{ producer: string; seq: number; attempts: number; id: string }> {
  return child
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('M '))
    .map((l) => {
      const [, producer, seq, attempts, id] = l.split(' ');
      return { producer: producer as string, seq: Number(seq), attempts: Number(attempts), id: id as string };
    });
}

/** Files that would be messages: anything in tmp/, ready/ or leased/. */
async function leftovers(spool: string): Promise<string[]> {
  return (await listFiles(spool)).filter((f) => /^(tmp|groups\/[^/]+\/(ready|leased))\//.test(f));
}

/** Runs `producers` producer processes of `perProducer` messages each, while `consumers` consume. */
async function produceAndConsume(spool: string, producers: string[], perProducer: number, consumers: Child[]) {
  // Consumers are up and blocked before the first push: every delivery needs a wake-up.
  for (const c of consumers) await c.line((l) => l.startsWith('ready'));
  const t0 = Date.now();
  const running = producers.map((p) => spawn('proc-producer.mjs', [spool, p, String(perProducer), 'none']));
  const total = producers.length * perProducer;
  const count = () => consumers.reduce((sum, c) => sum + deliveries(c).length, 0);
  await waitFor(() => count() >= total, 100_000, 50).catch(() => {
    throw new Error(
      `only ${count()} of ${total} delivered; consumers' stderr:\n${consumers.map((c) => c.stderr()).join('\n')}` +
        `\nproducers' stderr:\n${running.map((c) => c.stderr()).join('\n')}`,
    );
  });
  const elapsed = Date.now() - t0;
  for (const p of running) expect(await within(p.exited, 10_000, 'producer exit')).toBe(0);
  const pushMs = running.map((p) => Number(p.stdout().trim().split(' ')[3]));
  // Anything delivered twice would show up here: wait until the consumers are closed.
  for (const c of consumers) {
    await stop(c);
    expect(c.stdout()).toContain('closed');
    const lines = c.stdout().split('\n');
    expect(lines.filter((l) => l.startsWith('E '))).toEqual([]);
  }
  return { elapsed, pushMs };
}

describe('competing consumers', () => {
  it('3 producer processes × 2,000 and 3 consumer processes: each message acked exactly once, none left', SLOW, async () => {
    const spool = await spoolPath();
    const q = await open(spool);
    const consumers = ['c1', 'c2', 'c3'].map((name) => spawn('proc-consumer.mjs', [spool, name, '2']));
    const { elapsed, pushMs } = await produceAndConsume(spool, ['p1', 'p2', 'p3'], 2_000, consumers);

    const all = consumers.flatMap(deliveries);
    const keys = all.map((d) => `${d.producer}:${d.seq}`);
    const expected = ['p1', 'p2', 'p3'].flatMap((p) => Array.from({ length: 2_000 }, (_, seq) => `${p}:${seq}`));
    const seen = new Set<string>();
    const duplicates = keys.filter((k) => seen.has(k) || !seen.add(k));
    expect(duplicates).toEqual([]);
    expect(new Set(keys)).toEqual(new Set(expected));
    expect(keys).toHaveLength(6_000);
    expect(new Set(all.map((d) => d.id)).size).toBe(6_000);
    expect(all.filter((d) => d.attempts !== 1)).toEqual([]); // no crash, no expired lease: first deliveries only
    const shares = consumers.map((c) => deliveries(c).length);
    for (const share of shares) expect(share).toBeGreaterThan(0);

    expect(await q.stats()).toEqual({ ready: 0, leased: 0, delayed: 0, dead: 0, oldestReadyAgeMs: null, unrouted: 0 });
    expect(await leftovers(spool)).toEqual([]);
    console.log(`competing consumers: 6,000 delivered in ${elapsed} ms; pushes took ${pushMs.join('/')} ms; shares ${shares.join('/')}`);
  });

  it('one consumer process receives each producer’s messages in push order (strict FIFO per producer)', SLOW, async () => {
    const spool = await spoolPath();
    const q = await open(spool);
    const consumer = spawn('proc-consumer.mjs', [spool, 'solo', '1']);
    await produceAndConsume(spool, ['p1', 'p2', 'p3'], 1_000, [consumer]);

    const got = deliveries(consumer);
    expect(got).toHaveLength(3_000);
    for (const p of ['p1', 'p2', 'p3']) {
      expect(got.filter((d) => d.producer === p).map((d) => d.seq)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    }
    // The producers ran at the same time: the consumer saw their messages interleaved.
    const firstOfEach = ['p1', 'p2', 'p3'].map((p) => got.findIndex((d) => d.producer === p));
    expect(Math.max(...firstOfEach)).toBeLessThan(2_000);
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
  });
});

describe('leases across processes', () => {
  it('a consumer killed while holding a message: another process gets it after the lease expires, with attempts 2', async () => {
    const leaseMs = 2_000;
    const spool = await spoolPath();
    const q = await open(spool);
    const id = await q.push({ job: 'crash' });

    const a = spawn('proc-lease.mjs', [spool, String(leaseMs), 'ack']);
    const first = await event(a, 'popped');
    expect(first).toMatchObject({ id, attempts: 1, data: { job: 'crash' } });

    // B opens the spool and waits in pop while A still holds the lease.
    const b = spawn('proc-lease.mjs', [spool, '30000', 'ack']);
    const started = await event(b, 'started');
    expect(started.at).toBeLessThan(first.deadline); // B's pop is a waiting one, not recovery at open
    a.proc.kill('SIGKILL');
    expect(await a.exited).toBe('SIGKILL');

    const second = await event(b, 'popped', 0, leaseMs + 15_000);
    expect(second).toMatchObject({ id, attempts: 2, data: { job: 'crash' } });
    expect(second.at).toBeGreaterThanOrEqual(first.deadline); // not before the lease expired
    expect(second.at - first.at).toBeGreaterThanOrEqual(leaseMs - 100);
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 1 });

    b.proc.kill('SIGUSR2');
    expect(await event(b, 'ack')).toMatchObject({ ok: true });
    expect(await within(b.exited, 5_000, 'B exit')).toBe(0);
    expect(await q.stats()).toEqual({ ready: 0, leased: 0, delayed: 0, dead: 0, oldestReadyAgeMs: null, unrouted: 0 });
  });

  it('ack, extend and nack after the lease was lost reject with ELEASE_LOST and leave the redelivered copy alone', async () => {
    const spool = await spoolPath();
    const q = await open(spool);
    const id = await q.push({ job: 'fenced' });

    const a = spawn('proc-lease.mjs', [spool, '300', 'extend,ack,nack']);
    const first = await event(a, 'popped');
    expect(first).toMatchObject({ id, attempts: 1 });
    a.proc.kill('SIGSTOP'); // a stalled consumer: a GC pause, a swapped-out process, a debugger…

    const b = spawn('proc-lease.mjs', [spool, '30000', 'ack']);
    const second = await event(b, 'popped');
    expect(second).toMatchObject({ id, attempts: 2 });
    expect(second.at).toBeGreaterThanOrEqual(first.deadline);
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 1, delayed: 0, dead: 0 });

    // A wakes up and acts on the delivery it lost.
    a.proc.kill('SIGCONT');
    a.proc.kill('SIGUSR2');
    await event(a, 'closed');
    for (const op of ['extend', 'ack', 'nack']) {
      expect(await event(a, op)).toMatchObject({ code: 'ELEASE_LOST', name: 'LeaseLostError' });
    }
    expect(await within(a.exited, 5_000, 'A exit')).toBe(0);

    // B's copy is untouched: still leased (not requeued, not deleted), and B can ack it.
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 1, delayed: 0, dead: 0 });
    const leased = await readdir(`${spool}/groups/default/leased`);
    expect(leased).toHaveLength(1);
    expect(leased[0]).toContain(id);
    b.proc.kill('SIGUSR2');
    expect(await event(b, 'ack')).toMatchObject({ ok: true });
    expect(await within(b.exited, 5_000, 'B exit')).toBe(0);
    expect(await q.stats()).toEqual({ ready: 0, leased: 0, delayed: 0, dead: 0, oldestReadyAgeMs: null, unrouted: 0 });
  });
});

describe('wake-up across processes', () => {
  for (const usePolling of [false, true]) {
    it(`a consumer blocked in pop in another process wakes on a push within 1 s (usePolling: ${usePolling})`, async () => {
      const spool = await spoolPath();
      const q = await open(spool);
      // reconcileMs 60 s: within the test only a doorbell event can wake the consumer.
      const w = spawn('proc-wait.mjs', [spool, JSON.stringify({ reconcileMs: 60_000, usePolling, pollIntervalMs: 50 }), '5']);
      await event(w, 'waiting');
      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) {
        await sleep(250); // let it go back to waiting, so that the push is not found by its scan
        const t0 = Date.now();
        const id = await q.push({ i });
        const got = await event(w, 'got', i, 5_000);
        expect(got).toMatchObject({ id, data: { i }, attempts: 1 });
        latencies.push(got.at - t0);
      }
      expect(Math.max(...latencies)).toBeLessThan(1_000);
      await event(w, 'closed');
      expect(await within(w.exited, 5_000, 'exit')).toBe(0);
      expect(events(w).filter((e) => e.event === 'unexpected')).toEqual([]);
      console.log(`wake-up latency (usePolling ${usePolling}): ${latencies.join(', ')} ms`);
    });
  }

  it('a waiting consumer holds O(1) inotify watches with 5,000 messages in its ready directory', async (ctx) => {
    const fdinfo = await readdir('/proc/self/fdinfo').catch(() => null);
    if (fdinfo === null) {
      console.log('skipped: /proc/<pid>/fdinfo is not readable here, so inotify watches cannot be counted');
      ctx.skip();
    }
    const spool = await spoolPath();
    const q = await open(spool, { envelopes: false }); // 5,000 files, not 40 envelopes
    // A backlog that stays in ready/ while the consumer waits: due in an hour.
    await q.pushMany(
      Array.from({ length: 5_000 }, (_, i) => i),
      { delayMs: 3_600_000 },
    );
    expect(await q.stats()).toMatchObject({ ready: 0, delayed: 5_000 });
    expect((await listFiles(`${spool}/groups/default/ready`)).length).toBe(5_000);

    const w = spawn('proc-wait.mjs', [spool, JSON.stringify({ reconcileMs: 60_000 }), '1']);
    const { pid } = await event(w, 'waiting');
    await sleep(300);
    const waiting = await inotifyWatches(pid);
    expect(waiting).toBeGreaterThanOrEqual(1); // it does watch (the doorbell)…
    expect(waiting).toBeLessThan(20); // …and not the backlog

    // Still awake through that watch: a due message arrives at once.
    const t0 = Date.now();
    const id = await q.push('now');
    const got = await event(w, 'got', 0, 5_000);
    expect(got).toMatchObject({ id, data: 'now' });
    expect(got.at - t0).toBeLessThan(1_000);
    await event(w, 'closed');
    expect(await within(w.exited, 5_000, 'exit')).toBe(0);
    console.log(`inotify watches of a waiting consumer with 5,000 messages in ready/: ${waiting}`);
  });

  it('a ring that arrives while the waiting consumer is still scanning is not lost', async () => {
    // Every scan of this consumer lists one large due bucket: 20,000 messages delayed by a day,
    // in the current bucket because this spool's buckets are a year wide (spoolq.json is the
    // spool's creation options; openQueue adopts it). The wide bucket only makes the scan long
    // enough to hit the window reliably; the same window exists with the default buckets.
    // reconcileMs is 60 s, so a wake-up that is lost shows up as a delivery taking seconds.
    const spool = await spoolPath();
    await mkdir(spool, { recursive: true });
    await writeFile(`${spool}/spoolq.json`, `${JSON.stringify({ format: 'spoolq', version: 1, bucketMs: 365 * 86_400_000 })}\n`);
    const q = await open(spool);
    await q.pushMany(
      Array.from({ length: 20_000 }, (_, i) => i),
      { delayMs: 86_400_000 },
    );
    expect((await readdir(`${spool}/groups/default/ready`)).length).toBe(1);

    const rounds = 20;
    const w = spawn('proc-wait.mjs', [spool, JSON.stringify({ reconcileMs: 60_000 }), String(rounds)]);
    await event(w, 'waiting');
    const latencies: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await sleep(Math.random() * 30); // lands anywhere in the consumer's next scan, or after it
      const t0 = Date.now();
      const id = await q.push({ i });
      const got = await event(w, 'got', i, 3_000).catch(() => {
        throw new Error(`round ${i}: the consumer did not wake within 3 s (latencies so far: ${latencies.join(', ')} ms)`);
      });
      expect(got).toMatchObject({ id, data: { i } });
      latencies.push(got.at - t0);
    }
    expect(Math.max(...latencies)).toBeLessThan(2_000);
    console.log(`wake-up latency while scanning 20,000 names: ${latencies.join(', ')} ms`);
  });

  it('without watch events, the reconciliation scan still delivers (usePolling with a 60 s interval)', async () => {
    const spool = await spoolPath();
    const q = await open(spool);
    // Both poll the doorbell only every 60 s, so no watch event can arrive during the test.
    // 'recon' reconciles every 300 ms; 'control' every 60 s, and shows that nothing else wakes it.
    const dead = { usePolling: true, pollIntervalMs: 60_000 };
    const recon = spawn('proc-wait.mjs', [spool, JSON.stringify({ ...dead, group: 'recon', reconcileMs: 300 }), '1']);
    const control = spawn('proc-wait.mjs', [spool, JSON.stringify({ ...dead, group: 'control', reconcileMs: 60_000 }), '1']);
    await event(recon, 'waiting');
    await event(control, 'waiting');
    await sleep(300);

    const t0 = Date.now();
    const id = await q.push('published to every group'); // default, recon and control
    const got = await event(recon, 'got', 0, 5_000);
    expect(got).toMatchObject({ id, attempts: 1 });
    expect(got.at - t0).toBeLessThan(1_000);

    await sleep(Math.max(0, t0 + 1_500 - Date.now()));
    expect(events(control).filter((e) => e.event === 'got')).toEqual([]);
    await stop(control); // close() ends its pending pop
    expect(events(control).at(-1)).toMatchObject({ event: 'closed' });
    expect(await within(recon.exited, 5_000, 'exit')).toBe(0);
    console.log(`reconciliation-scan delivery: ${got.at - t0} ms`);
  });
});

describe('hygiene', () => {
  it('close() is idempotent and leaves no handles: the process exits on its own within 2 s', async () => {
    const spool = await spoolPath();
    const child = spawn('proc-hygiene.mjs', [spool]);
    const closed = await child.line((l) => l.startsWith('closed'), 20_000);
    const t0 = Date.now();
    const code = await within(child.exited, 2_000, 'exit after close()');
    expect({ code, stderr: child.stderr() }).toEqual({ code: 0, stderr: '' });
    expect(closed).toBe('closed same=true seen=1,2,3,4,5 ready=0 leased=0');
    console.log(`exited ${Date.now() - t0} ms after close()`);
  });
});

/** Counts the inotify watches a process holds: "inotify wd:" lines of /proc/<pid>/fdinfo/*. */
async function inotifyWatches(pid: number): Promise<number> {
  let count = 0;
  for (const fd of await readdir(`/proc/${pid}/fdinfo`)) {
    const text = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    count += text.split('\n').filter((l) => l.startsWith('inotify wd:')).length;
  }
  return count;
}
