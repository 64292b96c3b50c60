/**
 * A/B of two builds of spoolq on one workload, raw payloads of 256 B (or `--bytes`), one group:
 *   push   a sequential producer, against the raw floor of its durability (floor.mjs's writeFloor);
 *   drain  one consumer in this process pops and acks until the queue is empty, after a warm-up
 *          drain of 2,000 (untimed); the queue is filled by pushMany(100) of the same build (as
 *          bench:peers fills its drains), against the claim floor (floor.mjs's claimFloor).
 * The current build (dist/) and another one (`--before`, e.g. the dist/ of a git worktree at an
 * older commit) run in the same process, alternated with the floor round by round (the order
 * rotates), each in a fresh spool (the floor in fresh directories), all warmed for 50 ms first,
 * as in bench:peers. It prints each one's time ÷ the floor's, per round, as the median round
 * (range): a change of a few % needs 25+ rounds here.
 *
 *   git worktree add /tmp/spoolq-before <rev> && (cd /tmp/spoolq-before && npm ci && npm run build)
 *   node bench/ab.mjs --before /tmp/spoolq-before/dist/index.js [--durability fsync|none]
 *                     [--workload push|drain] [--rounds 31] [--count 200 (push), 6000 (drain)] [--bytes 256]
 *
 * It waits first until a file creation costs at most 40 µs (Workspace#settleCreation), and
 * reports the creation cost before and after: on this ext4 without a journal, creations stay
 * dear for minutes after any run's cleanup, and then the floor measures them, not spoolq.
 */
import { parseArgs } from 'node:util';
import { DIST, fmt, interleaver, nowMs, PAYLOAD, rate, ratioCell, roundRatio, Workspace } from './common.mjs';
import { claimFloor, writeFloor } from './floor.mjs';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    durability: { type: 'string', default: 'fsync' },
    rounds: { type: 'string', default: '31' },
    workload: { type: 'string', default: 'push' },
    count: { type: 'string' },
    bytes: { type: 'string', default: String(PAYLOAD.length) },
  },
});
if (!values.before) throw new Error('--before <path of the other build, its dist/index.js> is required');
const { durability, workload } = values;
if (!['push', 'drain'].includes(workload)) throw new Error(`--workload must be push or drain, got ${workload}`);
const count = Number(values.count ?? (workload === 'push' ? 200 : 6000));
const payload = Buffer.alloc(Number(values.bytes), PAYLOAD[0]); // PAYLOAD's bytes, at any size
/** Untimed pushes (and floor writes) before the timed ones, as in bench:peers. */
const WARM_UP_MS = 50;
const builds = { after: (await import(DIST)).openQueue, before: (await import(values.before)).openQueue };

async function sequential(openQueue, dir) {
  const q = await openQueue(dir, { durability, codec: 'raw' });
  try {
    const warm = nowMs();
    while (nowMs() - warm < WARM_UP_MS) await q.push(payload);
    const start = nowMs();
    for (let i = 0; i < count; i++) await q.push(payload);
    return rate(count, nowMs() - start);
  } finally {
    await q.close();
  }
}

/** Messages each drain round pops and acks untimed first, as bench:peers' drain children do. */
const DRAIN_WARM_UP = 2_000;

async function drain(openQueue, dir) {
  const producer = await openQueue(dir, { durability: 'none', codec: 'raw', group: null });
  const q = await openQueue(dir, { durability, codec: 'raw' });
  const fill = async (n) => {
    for (let done = 0; done < n; done += 100) await producer.pushMany(Array.from({ length: Math.min(100, n - done) }, () => payload));
  };
  const popAll = async () => {
    let n = 0;
    for (let m = await q.pop({ timeoutMs: 0 }); m !== null; m = await q.pop({ timeoutMs: 0 })) {
      await m.ack();
      n++;
    }
    return n;
  };
  try {
    await fill(DRAIN_WARM_UP);
    if ((await popAll()) !== DRAIN_WARM_UP) throw new Error('the warm-up drain missed messages');
    await fill(count);
    const start = nowMs();
    const n = await popAll();
    const ms = nowMs() - start;
    if (n !== count) throw new Error(`drained ${n} of ${count}`);
    return rate(count, ms);
  } finally {
    await Promise.all([q.close(), producer.close()]);
  }
}

const ws = new Workspace();
try {
  const settled = await ws.settleCreation();
  console.log(`A file creation: ${fmt.us(settled.us)} µs (waited ${(settled.waitedMs / 1000).toFixed(0)} s).`);
  const t = await interleaver(
    ws,
    Number(values.rounds),
  )({
    floor: async () =>
      workload === 'push'
        ? writeFloor(await ws.dir('floor'), { count, sync: durability === 'fsync', warmUpMs: WARM_UP_MS, payload })
        : claimFloor(await ws.dir('floor'), { count, payload }),
    before: async () => (workload === 'push' ? sequential : drain)(builds.before, await ws.spool('before')),
    after: async () => (workload === 'push' ? sequential : drain)(builds.after, await ws.spool('after')),
  });
  const what = workload === 'push' ? 'Sequential push' : 'Drain (pop + ack, one consumer)';
  console.log(`${what} of ${payload.length} B, durability ${durability}, ${values.rounds} rounds of ${count}:`);
  for (const name of ['before', 'after']) {
    console.log(
      `  ${name}: ${t[name].usPerMsg.toFixed(1)} µs a message, ${ratioCell(roundRatio(t[name], t.floor))} the floor (${t.floor.usPerMsg.toFixed(1)} µs)`,
    );
  }
  console.log(`  after ÷ before: ${ratioCell(roundRatio(t.after, t.before))}`);
  console.log(`A file creation after: ${fmt.us(await ws.creationCost())} µs.`);
} finally {
  await ws.cleanup();
}
