// A subscriber: subscribes its own durable group (named after it) to its topic patterns and
// handles each notification; SIGTERM or SIGINT closes it gracefully (the running handler
// finishes and is acked). Killed (SIGKILL), it loses nothing: what it held is delivered again
// when its lease runs out, and what arrives while it is down waits in its group.
//
//   node subscriber.mjs SPOOL NAME [LEDGER]      NAME is email or audit (see shared.mjs)
//
// LEDGER is a file where it appends one line per notification handled, before the ack: main.mjs
// reads it to check that nothing is missing, even across a SIGKILL.
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { openQueue } from '../../dist/index.js';
import { LEASE_MS, label, paint, SUBSCRIBERS, sayAs } from './shared.mjs';

const [spool, name, ledger] = process.argv.slice(2);
const { patterns, workMs, verb } = SUBSCRIBERS[name];
const say = sayAs(name);
const send = (event) => process.send?.(event);

const q = await openQueue(spool, { group: null, leaseMs: LEASE_MS });
// Creates the group `name` if needed, bound to exactly `patterns`; the handle's options
// (leaseMs) apply to it. Resolve acks; throw would retry with backoff.
const subscription = await q.subscribe(
  patterns,
  async (m) => {
    const { n, run } = m.data;
    send({ type: 'start', n, attempts: m.attempts });
    await sleep(workMs); // the work: send the email, write the audit record
    if (ledger) appendFileSync(ledger, `${JSON.stringify({ run, n, topic: m.topic, attempts: m.attempts })}\n`);
    if (m.attempts > 1) say(`${paint.yellow('↻')} ${verb} ${label(n)} ${m.topic}, delivered again (attempt ${m.attempts})`);
    // Returning acks it. A crash before this point leaves it leased: it comes back with attempts + 1.
  },
  { group: name },
);

let closing = false;
const close = async (signal) => {
  if (closing) return; // Ctrl-C in a terminal signals main and its children alike
  closing = true;
  await subscription.close(); // stop taking notifications, let the running handler finish
  await q.close();
  say(paint.dim(`closed gracefully (${signal})`));
  if (process.connected) process.disconnect(); // the IPC channel was the last handle: exit on our own
};
process.once('SIGTERM', () => close('SIGTERM'));
process.once('SIGINT', () => close('SIGINT'));

say(`subscribed to ${patterns.join(', ')} ${paint.dim(`(group ${name}, pid ${process.pid})`)}`);
send({ type: 'ready' });
