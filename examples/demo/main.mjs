// spoolq demo: one producer and two consumers, three processes sharing one spool directory.
//   npm run demo        (builds first, then runs this file)
//
// main.mjs     creates a spool in a temp dir, starts the processes, prints a summary, cleans up
// producer.mjs pushes 20 jobs: a few urgent, a few low priority, one delayed, one flaky
// consumer.mjs handles jobs with q.consume(); the flaky job fails once and is retried
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openQueue } from '../../dist/index.js';
import { JOB_COUNT, paint } from './shared.mjs';

const started = Date.now();
const dir = await mkdtemp(join(tmpdir(), 'spoolq-demo-'));
const spool = join(dir, 'spool');
const children = [];

const handled = new Map(); // job number → { by, attempt } of its successful run
const perConsumer = new Map(); // consumer name → jobs handled
let failures = 0;

/** Forks one of the demo's processes; it reports to us over IPC and prints its own lines. */
function start(file, name) {
  const child = fork(new URL(file, import.meta.url), [spool, name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const ready = new Promise((resolve) => child.once('message', resolve)); // a consumer's first message
  child.on('message', (event) => {
    if (event.type === 'handled') {
      handled.set(event.job, { by: name, attempt: event.attempt });
      perConsumer.set(name, (perConsumer.get(name) ?? 0) + 1);
    } else if (event.type === 'failed') {
      failures++;
    }
  });
  return { name, child, exited, ready };
}

async function until(condition, timeoutMs, what) {
  for (const end = Date.now() + timeoutMs; !condition(); ) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

try {
  const q = await openQueue(spool); // creates the spool; used at the end for stats()
  console.log(paint.bold('spoolq demo'), paint.dim(`· spool ${spool}`));
  console.log(paint.dim('one producer and two consumer processes; the directory is the only broker\n'));

  // Consumers first: they wait for work, and wake up when the producer rings the doorbell.
  const consumers = ['consumer-1', 'consumer-2'].map((name) => start('consumer.mjs', name));
  await Promise.all(consumers.map((c) => c.ready));

  const producer = start('producer.mjs', 'producer');
  if ((await producer.exited) !== 0) throw new Error('the producer failed');
  await until(() => handled.size === JOB_COUNT, 20_000, `handling all ${JOB_COUNT} jobs`);

  // Graceful shutdown: SIGTERM → consumer.close() (waits for the running handler) → q.close().
  console.log(paint.dim('\nall jobs done; asking the consumers to stop (SIGTERM)'));
  for (const c of consumers) c.child.kill('SIGTERM');
  const codes = await Promise.all(consumers.map((c) => c.exited));
  const stats = await q.stats();
  await q.close();

  console.log(`\n${paint.bold('summary')}`);
  consumers.forEach((c, i) => {
    const count = String(perConsumer.get(c.name) ?? 0).padStart(2);
    console.log(`  ${paint.name(c.name)}  handled ${count} jobs  ${paint.dim(`(exit code ${codes[i]})`)}`);
  });
  const retried = [...handled].filter(([, h]) => h.attempt > 1).map(([job, h]) => `job ${job} (attempt ${h.attempt})`);
  console.log(`  retries       ${failures} failed attempt, then succeeded: ${retried.join(', ') || 'none'}`);
  console.log(`  left in queue ready ${stats.ready}, leased ${stats.leased}, delayed ${stats.delayed}, dead ${stats.dead}`);
  console.log(`  took          ${((Date.now() - started) / 1000).toFixed(1)} s; the temp spool is removed`);
  const clean = codes.every((code) => code === 0) && stats.ready + stats.leased + stats.delayed + stats.dead === 0;
  if (!clean) process.exitCode = 1;
} catch (error) {
  console.error(paint.red(`\ndemo failed: ${error.message}`));
  process.exitCode = 1;
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
}
