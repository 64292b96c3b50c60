/**
 * The consumer process of latency.mjs. It records, for each message, the monotonic time at
 * which the handler saw it, and reports all samples once `count` arrived.
 *
 *   node bench/latency-child.mjs spoolq <spool> <count>   consume() with concurrency 1
 *   node bench/latency-child.mjs floor <dir> <count>      fs.watch on <dir>/ready (raw inotify),
 *                                                         then open + read of the new file
 */
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DIST, nowMs, peakRssKb } from './common.mjs';

const [kind, dir, countArg] = process.argv.slice(2);
const count = Number(countArg);
const samples = []; // [index, handler time]
let finish;
const finished = new Promise((resolve) => {
  finish = resolve;
});
const record = (i) => {
  samples.push([i, nowMs()]);
  if (samples.length === count) finish();
};

if (kind === 'spoolq') {
  const { openQueue } = await import(DIST);
  const q = await openQueue(dir, { durability: 'none' });
  await q.pop({ timeoutMs: 0 }); // starts the doorbell watcher before 'ready'
  const consumer = q.consume((m) => record(m.data.i));
  process.send({ type: 'ready' });
  await finished;
  await consumer.close();
  await q.close();
} else {
  const ready = join(dir, 'ready');
  const seen = new Set();
  const watcher = watch(ready, async (_event, name) => {
    if (!name || seen.has(name)) return;
    seen.add(name);
    const { i } = JSON.parse(await readFile(join(ready, name), 'utf8'));
    record(i);
  });
  process.send({ type: 'ready' });
  await finished;
  watcher.close();
}
process.send({ type: 'done', samples, maxRssKb: peakRssKb() }, () => process.disconnect());
