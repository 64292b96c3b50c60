/**
 * A consumer process for the peer drain (run.mjs): opens the queue of one system, says 'ready',
 * and on 'go' takes, reads and acknowledges messages one at a time, each individually:
 *
 *   spoolq       pop({ timeoutMs: 0 }) + ack(), until pop returns null
 *   plainjob     getAndMarkJobAsProcessing + getJobById + markJobAsDone (what its worker does per
 *                job, without the worker's scheduled-job check and poll sleep), until none is left
 *   qlobber-fsq  subscribe(handler) on 'go' + refresh_now(); the handler calls done(), and the
 *                message counts when done's finish callback runs (file truncated, unlinked,
 *                unlocked). It cannot tell an empty queue, so the parent polls the counts.
 *
 * Before the timed drain, on 'warm', the child drains a first batch the same way, untimed, so
 * that the timed one runs as in a long-running consumer (code compiled, caches warm), for every
 * system alike: a fresh process spent most of a short drain compiling. Each loop takes its
 * messages at one call site: with a second one before the loop, which ran once a drain and so had
 * no type feedback after the warm-up, V8 deoptimized the loop and what it had inlined at the first
 * take of the timed drain, and compiled them again during it (--trace-deopt, 2026-11-27). Even so,
 * V8 still finishes optimizing parts of spoolq's consumer path during a short timed drain.
 *
 * Each message's time is taken after its acknowledgement; the child reports the time of its
 * last one (CLOCK_MONOTONIC, the parent's clock too).
 * Usage (forked with an IPC channel): node bench/peers/drain-child.mjs <system> <dir> <class>
 */
import { nowMs, peakRssKb } from '../common.mjs';
import { openPlainjob, openQlobber, openSpoolq, qlobberStop, TOPIC } from './systems.mjs';

const [system, dir, cls] = process.argv.slice(2);
let count = 0;
let bytes = 0;
let lastAt = 0;
let cpu;

const handled = (length) => {
  count++;
  bytes += length;
  lastAt = nowMs();
};

function report(type) {
  const usage = process.cpuUsage(cpu);
  return { type, count, bytes, lastAt, cpuMs: (usage.user + usage.system) / 1000, maxRssKb: peakRssKb(), busyRetries };
}

/**
 * Runs a plainjob call again when SQLite answers SQLITE_BUSY: with 4 processes in WAL mode a
 * write can get it at once, without waiting out busy_timeout (an upgrade from a read snapshot
 * that went stale). One bench run stopped on an error thrown by markJobAsDone in the 4-consumer
 * durable drain (the log cut off its message, so SQLITE_BUSY is the likely cause, not a seen
 * one). A worker retries such a call. The retries are counted in the report (`busyRetries`);
 * any other error still stops the run.
 */
let busyRetries = 0;
function busyRetry(call) {
  for (;;) {
    try {
      return call();
    } catch (error) {
      if (!String(error?.code).startsWith('SQLITE_BUSY')) throw error;
      busyRetries++;
    }
  }
}

/**
 * Per system: `drain()` takes, reads and acknowledges messages until none is left (qlobber-fsq:
 * until the parent says 'stop'), `close()` closes the consumer.
 */
const setups = {
  async spoolq() {
    const q = await openSpoolq(dir, cls);
    await q.pop({ timeoutMs: 0 }); // starts the watcher and the index
    return {
      async drain() {
        for (;;) {
          const m = await q.pop({ timeoutMs: 0 });
          if (m === null) return;
          await m.ack();
          handled(m.body.length);
        }
      },
      close: () => q.close(),
    };
  },

  async plainjob() {
    const { queue } = openPlainjob(dir, cls);
    return {
      async drain() {
        for (;;) {
          const next = busyRetry(() => queue.getAndMarkJobAsProcessing(TOPIC));
          if (!next) return;
          const job = busyRetry(() => queue.getJobById(next.id));
          busyRetry(() => queue.markJobAsDone(job.id));
          handled(job.data.length);
        }
      },
      close: async () => queue.close(),
    };
  },

  async 'qlobber-fsq'() {
    const fsq = await openQlobber(dir, cls);
    const handler = (data, _info, done) => {
      done(null, (err) => {
        if (err) throw err;
        handled(data.length);
      });
    };
    let stopped = null;
    process.on('message', (m) => {
      if (m === 'poll') process.send(report('progress'));
      if (m === 'stop') stopped?.();
    });
    return {
      drain: () =>
        new Promise((resolve) => {
          stopped = () => fsq.unsubscribe(TOPIC, handler, resolve);
          fsq.subscribe(TOPIC, handler);
          fsq.refresh_now();
        }),
      close: () => qlobberStop(fsq),
    };
  },
};

const consumer = await setups[system]();
process.on('message', async (m) => {
  if (m === 'warm') {
    await consumer.drain();
    process.send({ type: 'warm', count });
    count = 0;
    bytes = 0;
  } else if (m === 'go') {
    cpu = process.cpuUsage();
    await consumer.drain();
    const done = report('done');
    await consumer.close();
    process.send(done, () => process.disconnect());
  }
});
process.send({ type: 'ready' });
