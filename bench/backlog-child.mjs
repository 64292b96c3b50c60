/**
 * The consumer process of backlog.mjs, started fresh on a filled spool so that its RSS is its
 * own. Times openQueue() until it resolves and the first pop({ timeoutMs: 0 }) until it returns
 * a message (acked, untimed), says 'ready', then on each { type: 'drain', count } pops and acks
 * `count` messages and reports; on { type: 'close' } closes and reports its peak RSS.
 * Usage (forked with an IPC channel): node bench/backlog-child.mjs <spool>
 */
import { DIST, nowMs, peakRssKb } from './common.mjs';

const { openQueue } = await import(DIST);
const rssKb = () => Math.round(process.memoryUsage().rss / 1024);
const importedRssKb = rssKb();
// The highest RSS sampled every 5 ms in each phase: shows where the peak (VmHWM) happens.
const peakKb = { open: 0, firstPop: 0, drain: 0, idle: 0, close: 0 };
let phase = 'open';
const sampler = setInterval(() => {
  peakKb[phase] = Math.max(peakKb[phase], rssKb());
}, 5);
sampler.unref();
const enter = (next) => {
  peakKb[phase] = Math.max(peakKb[phase], rssKb());
  phase = next;
};

let t = nowMs();
const prefetch = process.argv[3] ? { prefetch: Number(process.argv[3]) } : {};
const q = await openQueue(process.argv[2], { codec: 'raw', durability: 'none', ...prefetch });
const openMs = nowMs() - t;
enter('firstPop');
t = nowMs();
const first = await q.pop({ timeoutMs: 0 });
const firstPopMs = nowMs() - t;
if (first === null) throw new Error('the first pop found no message');
await first.ack();
enter('idle');
process.send({ type: 'ready', openMs, firstPopMs, importedRssKb, afterFirstPopRssKb: rssKb() });

process.on('message', async (m) => {
  if (m?.type === 'drain') {
    enter('drain');
    const cpu = process.cpuUsage();
    const start = nowMs();
    for (let i = 0; i < m.count; i++) {
      const message = await q.pop({ timeoutMs: 0 });
      if (message === null) throw new Error(`the queue ran empty after ${i} of ${m.count} pops`);
      await message.ack();
    }
    const ms = nowMs() - start;
    const { user, system } = process.cpuUsage(cpu);
    enter('idle');
    process.send({ type: 'drained', count: m.count, ms, cpuMs: (user + system) / 1000, rssKb: rssKb() });
  } else if (m?.type === 'close') {
    enter('close');
    await q.close();
    enter('close');
    process.send({ type: 'closed', maxRssKb: peakRssKb(), rssKb: rssKb(), peakKb }, () => process.disconnect());
  }
});
