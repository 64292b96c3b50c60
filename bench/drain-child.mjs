/**
 * A consumer process for drain.mjs: opens the spool, starts its watcher with an empty pop, says
 * 'ready', and on 'go' pops ({ timeoutMs: 0 }) and acks until the queue is empty.
 * Usage (forked with an IPC channel): node bench/drain-child.mjs <spool>
 */
import { DIST, nowMs, peakRssKb } from './common.mjs';

const { openQueue } = await import(DIST);
const q = await openQueue(process.argv[2], { codec: 'raw', durability: 'none' });
await q.pop({ timeoutMs: 0 }); // starts the doorbell watcher and the index: not part of the timing
process.send({ type: 'ready' });

process.once('message', async () => {
  const start = nowMs();
  const cpu = process.cpuUsage();
  let count = 0;
  for (let m = await q.pop({ timeoutMs: 0 }); m !== null; m = await q.pop({ timeoutMs: 0 })) {
    await m.ack();
    count++;
  }
  const ms = nowMs() - start;
  const { user, system } = process.cpuUsage(cpu);
  await q.close();
  process.send({ type: 'done', count, ms, cpuMs: (user + system) / 1000, maxRssKb: peakRssKb() }, () => process.disconnect());
});
