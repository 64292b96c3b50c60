/**
 * A/B of two builds of spoolq on one workload: a sequential producer, raw payloads of 256 B
 * (or `--bytes`), one group, against the raw floor of its durability (floor.mjs's writeFloor).
 * The current build (dist/) and another one (`--before`, e.g. the dist/ of a git worktree at an
 * older commit) run in the same process, alternated with the floor round by round (the order
 * rotates), each in a fresh spool (the floor in fresh directories), all warmed for 50 ms first,
 * as in bench:peers. It prints each one's time ÷ the floor's, per round, as the median round
 * (range): a change of a few % needs 25+ rounds here.
 *
 *   git worktree add /tmp/spoolq-before <rev> && (cd /tmp/spoolq-before && npm ci && npm run build)
 *   node bench/ab.mjs --before /tmp/spoolq-before/dist/index.js [--durability fsync|none]
 *                     [--rounds 31] [--count 200] [--bytes 256]
 *
 * It waits first until a file creation costs at most 40 µs (Workspace#settleCreation), and
 * reports the creation cost before and after: on this ext4 without a journal, creations stay
 * dear for minutes after any run's cleanup, and then the floor measures them, not spoolq.
 */
import { parseArgs } from 'node:util';
import { DIST, fmt, interleaver, nowMs, PAYLOAD, rate, ratioCell, roundRatio, Workspace } from './common.mjs';
import { writeFloor } from './floor.mjs';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    durability: { type: 'string', default: 'fsync' },
    rounds: { type: 'string', default: '31' },
    count: { type: 'string', default: '200' },
    bytes: { type: 'string', default: String(PAYLOAD.length) },
  },
});
if (!values.before) throw new Error('--before <path of the other build, its dist/index.js> is required');
const count = Number(values.count);
const { durability } = values;
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

const ws = new Workspace();
try {
  const settled = await ws.settleCreation();
  console.log(`A file creation: ${fmt.us(settled.us)} µs (waited ${(settled.waitedMs / 1000).toFixed(0)} s).`);
  const t = await interleaver(
    ws,
    Number(values.rounds),
  )({
    floor: async () => writeFloor(await ws.dir('floor'), { count, sync: durability === 'fsync', warmUpMs: WARM_UP_MS, payload }),
    before: async () => sequential(builds.before, await ws.spool('before')),
    after: async () => sequential(builds.after, await ws.spool('after')),
  });
  console.log(`Sequential push of ${payload.length} B, durability ${durability}, ${values.rounds} rounds of ${count}:`);
  for (const name of ['before', 'after']) {
    console.log(
      `  ${name}: ${t[name].usPerMsg.toFixed(1)} µs a push, ${ratioCell(roundRatio(t[name], t.floor))} the floor (${t.floor.usPerMsg.toFixed(1)} µs)`,
    );
  }
  console.log(`  after ÷ before: ${ratioCell(roundRatio(t.after, t.before))}`);
  console.log(`A file creation after: ${fmt.us(await ws.creationCost())} µs.`);
} finally {
  await ws.cleanup();
}
