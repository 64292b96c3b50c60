// spoolq notification center: one publisher and two subscriber processes sharing a spool. Each
// subscriber has its own durable group, so each receives every notification its patterns match,
// even across a crash: midway, each subscriber is killed with SIGKILL and restarted.
//
//   node examples/notification-center/main.mjs [--spool DIR] [--count N] [--interval MS]
//
// main.mjs       starts the processes, kills and restarts each subscriber once, checks, cleans up
// publisher.mjs  pushes N notifications (user.signup, order.paid, …) from a publish-only handle
// subscriber.mjs subscribes its group: email to ['user.*', 'order.paid'], audit to ['#']
//
// Without --spool the spool lives in a temp dir that is removed at the end; a given one is kept.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { openQueue } from '../../dist/index.js';
import { label, matches, paint, plural, SUBSCRIBERS, sayAs } from './shared.mjs';

const { values: args } = parseArgs({
  options: {
    spool: { type: 'string' },
    count: { type: 'string', default: '40' },
    interval: { type: 'string', default: '100' },
  },
});
const count = Number(args.count);
const intervalMs = Number(args.interval);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(intervalMs) || intervalMs < 0) {
  console.error('usage: main.mjs [--spool DIR] [--count N ≥ 1] [--interval MS ≥ 0]');
  process.exit(2);
}

const DOWNTIME_MS = 1_000; // how long a killed subscriber stays down
const DRAIN_TIMEOUT_MS = 20_000;
const started = Date.now();
const work = await mkdtemp(join(tmpdir(), 'spoolq-notify-')); // the subscribers' ledgers, and the default spool
const spool = args.spool ? resolve(args.spool) : join(work, 'spool');
const run = randomBytes(4).toString('hex'); // tells this run's notifications from a reused spool's older ones
const names = Object.keys(SUBSCRIBERS);
const say = sayAs('main');
const children = new Set();
const pushed = new Map(); // n → topic, as the publisher reports them
const subs = {}; // name → the running subscriber process

/** Forks one of the example's processes; it prints its own lines and reports events over IPC. */
function start(file, name, argv) {
  const child = fork(new URL(file, import.meta.url), argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const exited = new Promise((done) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      done(code ?? signal);
    }),
  );
  const ready = new Promise((done, fail) => {
    child.on('message', (event) => event.type === 'ready' && done());
    exited.then((code) => fail(new Error(`${name} exited (${code}) before it was ready`)));
  });
  ready.catch(() => {}); // awaited where it matters
  return { name, child, exited, ready };
}

const startSubscriber = (name) => start('subscriber.mjs', name, [spool, name, join(work, `${name}.jsonl`)]);

/** Polls `condition` (may be async) every 20 ms; false if it did not hold within `timeoutMs`. */
async function until(condition, timeoutMs) {
  for (const end = Date.now() + timeoutMs; !(await condition()); await sleep(20)) {
    if (Date.now() > end) return false;
  }
  return true;
}

/** Kills `name` with SIGKILL while it handles a notification (or idle, if none comes soon), then restarts it. */
async function crashAndRestart(name, admin) {
  const { child, exited } = subs[name];
  const victim = await new Promise((done) => {
    const onMessage = (event) => {
      if (event.type !== 'start') return;
      child.kill('SIGKILL'); // right away: the handler is still at work, the notification not acked
      finish(event);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(null);
    }, 500);
    const finish = (event) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      done(event);
    };
    child.on('message', onMessage);
  });
  await exited;
  const what = victim ? `while it was handling ${label(victim.n)} ${pushed.get(victim.n)}` : 'while it was idle';
  say(`${paint.red('✖')} SIGKILL ${name} (pid ${child.pid}) ${what}`);
  await sleep(DOWNTIME_MS);
  const stats = await admin.stats(name);
  const held = stats.leased > 0 ? `, ${stats.leased} still leased by the killed process` : '';
  say(`${paint.yellow('↻')} restarting ${name}: ${plural(stats.ready, 'notification')} waited in its group${held}`);
  subs[name] = startSubscriber(name);
  await subs[name].ready;
}

/** This run's lines of a subscriber's ledger: one per notification handled (before its ack). */
async function ledger(name) {
  const text = await readFile(join(work, `${name}.jsonl`), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.run === run);
}

const expectedBy = (name) => [...pushed].filter(([, topic]) => SUBSCRIBERS[name].patterns.some((p) => matches(p, topic))).map(([n]) => n);

async function report(name) {
  const entries = await ledger(name);
  const got = new Set(entries.map((e) => e.n));
  const expected = expectedBy(name);
  const missing = expected.filter((n) => !got.has(n));
  const again = entries.filter((e) => e.attempts > 1);
  return { name, expected, got, missing, again, twice: entries.length - got.size };
}

let interrupted = false;
process.once('SIGINT', async () => {
  interrupted = true;
  console.log(paint.dim('\ninterrupted: stopping the processes'));
  for (const child of children) child.kill('SIGTERM');
  await until(() => children.size === 0, 5_000);
  await rm(work, { recursive: true, force: true });
  process.exit(130);
});

let admin;
try {
  admin = await openQueue(spool, { group: null }); // creates the spool; used for stats()
  console.log(paint.bold('spoolq notification center'), paint.dim(`· spool ${spool}`));
  console.log(paint.dim('one publisher and two subscriber processes, each subscriber on its own durable group\n'));

  // Subscribers first: a group receives the pushes called after it was created.
  for (const name of names) subs[name] = startSubscriber(name);
  await Promise.all(names.map((name) => subs[name].ready));

  const publisher = start('publisher.mjs', 'publisher', [spool, String(count), String(intervalMs), run]);
  publisher.child.on('message', (event) => event.type === 'pushed' && pushed.set(event.n, event.topic));
  let publishing = true;
  void publisher.exited.then(() => {
    publishing = false;
  });

  // Midway, one subscriber crashes and comes back; later the other.
  const crashes = (async () => {
    const at = { email: Math.ceil(count * 0.25), audit: Math.ceil(count * 0.6) };
    for (const name of names) {
      await until(() => pushed.size >= at[name] || !publishing, 60_000);
      await crashAndRestart(name, admin);
    }
  })();
  const [publisherCode] = await Promise.all([publisher.exited, crashes]);
  if (publisherCode !== 0) throw new Error(`the publisher failed (exit ${publisherCode})`);

  // Done when every subscriber handled everything it matches and its group is empty: a
  // notification the killed process held comes back once its lease (LEASE_MS) runs out.
  const settled = async () => {
    for (const name of names) {
      if ((await report(name)).missing.length > 0) return false;
      const s = await admin.stats(name);
      if (s.ready + s.leased + s.delayed > 0) return false;
    }
    return true;
  };
  const drained = await until(settled, DRAIN_TIMEOUT_MS);
  say(
    paint.dim(drained ? 'all delivered; stopping the subscribers (SIGTERM)' : `not drained within ${DRAIN_TIMEOUT_MS / 1000} s; stopping`),
  );
  for (const name of names) subs[name].child.kill('SIGTERM');
  const codes = await Promise.all(names.map((name) => subs[name].exited));

  console.log(`\n${paint.bold('summary')}`);
  const width = String(count).length;
  let ok = drained && codes.every((code) => code === 0);
  for (const name of names) {
    const r = await report(name);
    const left = await admin.stats(name);
    const leftover = left.ready + left.leased + left.delayed + left.dead;
    ok &&= r.missing.length === 0 && leftover === 0;
    const missing =
      r.missing.length === 0 ? paint.green('missing: 0') : paint.red(`missing: ${r.missing.length} (${r.missing.map(label).join(' ')})`);
    const again = `${r.again.length}${r.again.length ? ` (${r.again.map((e) => `${label(e.n)}, attempt ${e.attempts}`).join('; ')})` : ''}`;
    const notes = [r.twice > 0 ? `${r.twice} handled twice` : '', leftover > 0 ? paint.red(`${leftover} left in the group`) : '']
      .filter(Boolean)
      .join(', ');
    console.log(
      `  ${paint.name(name)} ${SUBSCRIBERS[name].patterns.join(', ').padEnd(18)} received ${String(r.got.size).padStart(width)} of ${String(r.expected.length).padStart(width)}, ${missing}; redelivered after the crash: ${again}${notes ? `; ${notes}` : ''}`,
    );
  }
  console.log(
    `  took ${((Date.now() - started) / 1000).toFixed(1)} s${args.spool ? '; the spool is kept' : '; the temp spool is removed'}`,
  );
  if (!ok) process.exitCode = 1;
} catch (error) {
  if (!interrupted) console.error(paint.red(`\nnotification center failed: ${error.message}`));
  process.exitCode = 1;
} finally {
  for (const child of children) child.kill('SIGKILL');
  await admin?.close();
  await rm(work, { recursive: true, force: true });
}
