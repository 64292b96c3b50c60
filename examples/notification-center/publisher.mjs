// The publisher: a publish-only handle (group: null) that pushes `count` notifications with a
// topic each, one every `intervalMs`, then closes and exits. It knows nothing of the subscribers:
// every push goes to each group whose patterns match its topic, at the moment it is called.
//
//   node publisher.mjs SPOOL COUNT INTERVAL_MS RUN_ID
import { setTimeout as sleep } from 'node:timers/promises';
import { openQueue } from '../../dist/index.js';
import { label, plural, sayAs, TOPICS } from './shared.mjs';

const [spool, countArg = '30', intervalArg = '100', run = 'standalone'] = process.argv.slice(2);
const count = Number(countArg);
const intervalMs = Number(intervalArg);
const say = sayAs('publisher');
const send = (event) => process.send?.(event);

const q = await openQueue(spool, { group: null }); // publishes and creates no group of its own
say(`publishing ${plural(count, 'notification')}, one every ${intervalMs} ms`);

const byTopic = new Map();
for (let n = 1; n <= count; n++) {
  const topic = TOPICS[(n - 1) % TOPICS.length];
  // Resolves once the notification is committed (fsynced) into every matching group.
  await q.push({ run, n, topic, at: new Date().toISOString() }, { topic });
  byTopic.set(topic, (byTopic.get(topic) ?? 0) + 1);
  send({ type: 'pushed', n, topic });
  if (n < count) await sleep(intervalMs);
}

const { unrouted } = await q.stats();
const mix = [...byTopic].map(([topic, k]) => `${topic} ${k}`).join(', ');
const range = count === 1 ? label(1) : `${label(1)}–${label(count)}`;
say(`published ${plural(count, 'notification')} ${range} (${mix}); unrouted: ${unrouted}`);
await q.close();
