/**
 * Push throughput of one producer process, 256 B raw payloads, one subscriber group:
 *
 *   seq      one push at a time, each awaited (a sequential producer)
 *   conc16   16 pushes in flight: group commit shares the directory fsyncs between them
 *   many100  pushMany of 100 messages: one commit per batch
 *
 * openQueue and close are outside the timing. Run alone (it then also prints the process's peak
 * RSS: a producer's memory):
 *   node bench/push.mjs [--kind seq|conc16|many100] [--durability fsync|none] [--count 500]
 */
import { parseArgs } from 'node:util';
import { DIST, nowMs, PAYLOAD, peakRssKb, rate, Workspace } from './common.mjs';

const { openQueue } = await import(DIST);

export const KINDS = {
  seq: { label: 'push, sequential', run: (q, count) => sequential(q, count) },
  conc16: { label: 'push, 16 in flight', run: (q, count) => concurrent(q, count, 16) },
  many100: { label: 'pushMany(100)', run: (q, count) => batched(q, count, 100) },
};

async function sequential(q, count) {
  for (let i = 0; i < count; i++) await q.push(PAYLOAD);
}

async function concurrent(q, count, inFlight) {
  let next = 0;
  const worker = async () => {
    while (next++ < count) await q.push(PAYLOAD);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

async function batched(q, count, size) {
  const batch = Array.from({ length: size }, () => PAYLOAD);
  for (let done = 0; done < count; done += size) await q.pushMany(batch.slice(0, Math.min(size, count - done)));
}

/** Pushes `count` messages into a fresh spool at `spoolDir`; resolves to the rate. */
export async function pushWorkload(spoolDir, { kind, durability, count }) {
  const q = await openQueue(spoolDir, { durability, codec: 'raw' });
  try {
    const start = nowMs();
    await KINDS[kind].run(q, count);
    return rate(count, nowMs() - start);
  } finally {
    await q.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      kind: { type: 'string', default: 'seq' },
      durability: { type: 'string', default: 'fsync' },
      count: { type: 'string', default: '500' },
    },
  });
  const ws = new Workspace();
  try {
    const r = await pushWorkload(await ws.spool('push'), { ...values, count: Number(values.count) });
    const rssMb = (peakRssKb() / 1024).toFixed(0);
    console.log(
      `${KINDS[values.kind].label}, ${values.durability}: ${r.usPerMsg.toFixed(1)} µs/msg, ${r.perSec.toFixed(0)} msgs/s, producer peak RSS ${rssMb} MB`,
    );
  } finally {
    await ws.cleanup();
  }
}
