/**
 * Cross-process pop + ack throughput: the parent prefills `count` messages (256 B, untimed),
 * then 1 or 2 consumer processes (drain-child.mjs), already started and watching, pop
 * ({ timeoutMs: 0 }) and ack until the queue is empty. The time is the parent's, from 'go' to
 * the last consumer's report. Run alone: node bench/drain.mjs [--count 2000] [--consumers 2]
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DIST, nowMs, PAYLOAD, rate, Workspace } from './common.mjs';

const { openQueue } = await import(DIST);
const CHILD = fileURLToPath(new URL('./drain-child.mjs', import.meta.url));

/** Resolves with the next IPC message of `child` of the given type; rejects if it exits first. */
export function nextMessage(child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m?.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code) => reject(new Error(`consumer exited with ${code} before '${type}'`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export async function drainWorkload(spoolDir, { count, consumers }, beforeGo = async () => {}) {
  const producer = await openQueue(spoolDir, { codec: 'raw', durability: 'none' });
  const children = Array.from({ length: consumers }, () => fork(CHILD, [spoolDir], { stdio: 'inherit' }));
  try {
    await Promise.all(children.map((c) => nextMessage(c, 'ready')));
    const batch = Array.from({ length: 100 }, () => PAYLOAD);
    for (let done = 0; done < count; done += 100) await producer.pushMany(batch.slice(0, Math.min(100, count - done)));
    await beforeGo();
    const reports = children.map((c) => nextMessage(c, 'done'));
    const start = nowMs();
    for (const c of children) c.send('go');
    const done = await Promise.all(reports);
    const result = rate(count, nowMs() - start);
    const acked = done.reduce((sum, d) => sum + d.count, 0);
    if (acked !== count) throw new Error(`drain acked ${acked} messages, ${count} were pushed`);
    return {
      ...result,
      perConsumer: done.map((d) => d.count),
      cpuMs: done.reduce((sum, d) => sum + d.cpuMs, 0),
      maxRssKb: Math.max(...done.map((d) => d.maxRssKb)),
    };
  } finally {
    await producer.close();
    await Promise.all(children.map((c) => (c.exitCode === null ? once(c, 'exit') : null)));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { count: { type: 'string', default: '2000' }, consumers: { type: 'string', default: '1' } },
  });
  const ws = new Workspace();
  try {
    const r = await drainWorkload(await ws.spool('drain'), { count: Number(values.count), consumers: Number(values.consumers) });
    console.log(
      `drain, ${values.consumers} consumer(s): ${r.usPerMsg.toFixed(1)} µs/msg, ${r.perSec.toFixed(0)} msgs/s, split ${r.perConsumer.join('/')}, consumer CPU ${((r.cpuMs * 1000) / r.count).toFixed(0)} µs/msg, peak RSS ${(r.maxRssKb / 1024).toFixed(0)} MB`,
    );
  } finally {
    await ws.cleanup();
  }
}
