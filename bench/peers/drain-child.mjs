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
 * Each message's time is taken after its acknowledgement; the child reports the time of its
 * last one (CLOCK_MONOTONIC, the parent's clock too).
 * Usage (forked with an IPC channel): node bench/peers/drain-child.mjs <system> <dir> <class>
 */
import { nowMs } from '../common.mjs';
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
  return { type, count, bytes, lastAt, cpuMs: (usage.user + usage.system) / 1000, maxRssKb: process.resourceUsage().maxRSS };
}

let finished = false;
function finish(close) {
  if (finished) return;
  finished = true;
  const done = report('done');
  Promise.resolve(close()).then(() => process.send(done, () => process.disconnect()));
}

const setups = {
  async spoolq() {
    const q = await openSpoolq(dir, cls);
    await q.pop({ timeoutMs: 0 }); // starts the watcher and the index: not part of the timing
    return async () => {
      for (let m = await q.pop({ timeoutMs: 0 }); m !== null; m = await q.pop({ timeoutMs: 0 })) {
        await m.ack();
        handled(m.body.length);
      }
      finish(() => q.close());
    };
  },

  async plainjob() {
    const { queue } = openPlainjob(dir, cls);
    return async () => {
      for (let next = queue.getAndMarkJobAsProcessing(TOPIC); next; next = queue.getAndMarkJobAsProcessing(TOPIC)) {
        const job = queue.getJobById(next.id);
        queue.markJobAsDone(job.id);
        handled(job.data.length);
      }
      finish(() => queue.close());
    };
  },

  async 'qlobber-fsq'() {
    const fsq = await openQlobber(dir, cls);
    process.on('message', (m) => {
      if (m === 'poll') process.send(report('progress'));
      if (m === 'stop') finish(() => qlobberStop(fsq));
    });
    return async () => {
      fsq.subscribe(TOPIC, (data, _info, done) => {
        done(null, (err) => {
          if (err) throw err;
          handled(data.length);
        });
      });
      fsq.refresh_now();
    };
  },
};

const start = await setups[system]();
process.on('message', (m) => {
  if (m !== 'go') return;
  cpu = process.cpuUsage();
  start();
});
process.send({ type: 'ready' });
