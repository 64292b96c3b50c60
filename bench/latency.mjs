/**
 * Push-to-handler wake latency across processes. A consumer process (latency-child.mjs) waits;
 * the parent publishes one message every 5-10 ms carrying its index and the monotonic time just
 * before the publish (CLOCK_MONOTONIC is shared by all processes). The child records when its
 * handler saw each message. Per message:
 *
 *   latency   handler time − time before the publish: includes the publish itself, so in
 *             durability 'fsync' it includes the fdatasync and the directory fsync
 *   wake      handler time − time the consumer could first be told: for spoolq when push()
 *             resolved (the doorbell rings just before; in 'fsync' while the directory fsync
 *             runs, so the wake-up can be longer than this by up to that fsync), for the floor
 *             when the rename was done (inotify fires then, before the directory fsync)
 *   publish   duration of the publish call
 *
 * kind 'floor' is the same with the raw floor write (floor.mjs) and a consumer that waits in
 * fs.watch (raw inotify) and reads the new file: the wake-up floor of this machine.
 * Run alone: node bench/latency.mjs [--kind spoolq|floor] [--durability fsync|none] [--samples 300]
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DIST, nowMs, sleep, summarize, Workspace } from './common.mjs';
import { nextMessage } from './drain.mjs';
import { floorDirs, writeOne } from './floor.mjs';

const { openQueue } = await import(DIST);
const CHILD = fileURLToPath(new URL('./latency-child.mjs', import.meta.url));
/** How long to wait for the last samples after the last publish: covers a reconciliation scan. */
const GRACE_MS = 10_000;

async function openPublisher(kind, dir, durability) {
  if (kind === 'spoolq') {
    const q = await openQueue(dir, { durability });
    return {
      publish: async (i, t0) => {
        await q.push({ i, t0 });
        return nowMs();
      },
      close: () => q.close(),
    };
  }
  const dirs = await floorDirs(dir);
  const sync = durability === 'fsync';
  return {
    publish: (i, t0) => writeOne(dirs, `m${i}`, sync, Buffer.from(JSON.stringify({ i, t0 }))),
    close: () => dirs.close(),
  };
}

export async function latencyWorkload(dir, { kind, durability, samples, minGapMs = 5, maxGapMs = 10 }) {
  const publisher = await openPublisher(kind, dir, durability); // creates the spool before the child opens it
  const child = fork(CHILD, [kind, dir, String(samples)], { stdio: 'inherit' });
  const sent = [];
  try {
    await nextMessage(child, 'ready');
    const report = nextMessage(child, 'done');
    report.catch(() => {});
    for (let i = 0; i < samples; i++) {
      const t0 = nowMs();
      const visible = await publisher.publish(i, t0);
      sent.push([t0, visible, nowMs()]);
      await sleep(minGapMs + Math.random() * (maxGapMs - minGapMs));
    }
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, GRACE_MS, null);
    });
    const done = await Promise.race([report, timeout]);
    clearTimeout(timer);
    if (!done) {
      child.kill();
      throw new Error(`the consumer did not see all ${samples} messages within ${GRACE_MS} ms of the last push`);
    }
    // Lists of ms values, one per message; summarize() gives p50, p99 and max.
    return {
      latency: done.samples.map(([i, t]) => t - sent[i][0]),
      wake: done.samples.map(([i, t]) => t - sent[i][1]),
      publish: sent.map(([t0, , t2]) => t2 - t0),
      maxRssKb: done.maxRssKb,
    };
  } finally {
    await publisher.close();
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      kind: { type: 'string', default: 'spoolq' },
      durability: { type: 'string', default: 'none' },
      samples: { type: 'string', default: '300' },
    },
  });
  const ws = new Workspace();
  try {
    const dir = values.kind === 'spoolq' ? await ws.spool('latency') : await ws.dir('latency-floor');
    const r = await latencyWorkload(dir, { ...values, samples: Number(values.samples) });
    const show = (values) => {
      const s = summarize(values);
      return `p50 ${s.p50.toFixed(2)} p99 ${s.p99.toFixed(2)} max ${s.max.toFixed(2)} ms`;
    };
    console.log(`${values.kind}, ${values.durability}: latency ${show(r.latency)}; wake ${show(r.wake)}; publish ${show(r.publish)}`);
  } finally {
    await ws.cleanup();
  }
}
