// The demo's consumer: handles jobs one at a time until SIGTERM, then shuts down gracefully.
import { setTimeout as sleep } from 'node:timers/promises';
import { openQueue } from '../../dist/index.js';
import { describePriority, paint } from './shared.mjs';

const [spool, name] = process.argv.slice(2);
const say = (text) => console.log(`${paint.name(name)} ${text}`);
// A failed job comes back after backoff.baseMs × 2^(attempt−1) (with jitter): short for the demo.
const q = await openQueue(spool, { backoff: { baseMs: 400, maxMs: 2_000 } });

const consumer = q.consume(async (m) => {
  const job = m.data;
  const what = `job ${String(job.n).padStart(2)} ${job.task.padEnd(20)} ${paint.dim(`${describePriority(m.priority)}, attempt ${m.attempts}`)}`;
  await sleep(100 + Math.floor(Math.random() * 150)); // the work
  if (job.flaky && m.attempts === 1) {
    say(`${paint.red('✖')} ${what} ${paint.red('→ upstream timeout, will retry')}`);
    process.send({ type: 'failed', job: job.n, attempt: m.attempts });
    throw new Error('upstream timeout'); // consume() nacks it: it comes back with attempts + 1
  }
  say(`${paint.green('✔')} ${what}`);
  process.send({ type: 'handled', job: job.n, attempt: m.attempts });
  // Returning acks the message.
});

process.once('SIGTERM', async () => {
  await consumer.close(); // stop taking jobs, let the running one finish (and be acked)
  await q.close();
  say(paint.dim('closed gracefully'));
  process.disconnect(); // the IPC channel was the last handle: the process exits on its own
});

say(paint.dim('waiting for jobs'));
process.send({ type: 'ready' });
