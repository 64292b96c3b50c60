// The demo's producer: pushes every job, then closes its queue handle and exits.
import { openQueue } from '../../dist/index.js';
import { JOBS, paint } from './shared.mjs';

const [spool, name] = process.argv.slice(2);
const say = (text) => console.log(`${paint.name(name)} ${text}`);
const q = await openQueue(spool); // durability 'fsync': a resolved push survives a power loss

for (const job of JOBS) {
  await q.push(job, { priority: job.priority, ...(job.delayMs ? { delayMs: job.delayMs } : {}) });
}
const count = (p) => JOBS.filter((j) => j.priority === p).length;
say(
  `pushed ${JOBS.length} jobs: ${count(0)} urgent, ${count(4)} normal, ${count(9)} low priority` +
    `; job ${JOBS.find((j) => j.delayMs).n} is delayed by 2 s, job ${JOBS.find((j) => j.flaky).n} will fail once`,
);
await q.close();
