/**
 * Backlog scaling (issue 6, "Flat with backlog"): how a consumer behaves when N messages wait.
 *
 * For each backlog size N, in a fresh spool:
 *   fill       P producer processes (backlog-fill-child.mjs) push N messages of 256 B with
 *              pushMany(batch), durability 'none': the layout real pushes make (10 s buckets).
 *              The fill starts at a bucket boundary (unless --no-align), so the first bucket, the
 *              one the consumer lists at each refill, is a full one
 *   consumer   a fresh process (backlog-child.mjs) times openQueue() until it resolves, then the
 *              first pop({ timeoutMs: 0 }) until it returns a message, then pop + ack of D
 *              messages, and reports its peak RSS (VmHWM, common.mjs peakRssKb)
 *   floor      in this process, on the same spool: rename of a ready file into a lease directory,
 *              open, read, close, unlink (the claim floor of floor.mjs), for D other messages. The
 *              names are listed beforehand and not timed: a consumer with a perfect index.
 *
 * D = min(--drain, (N - 1) / 2), so the queue never runs empty: at least N / 2 messages wait
 * during the whole measurement. The consumer takes the head of the delivery order; the floor
 * takes names at the end of the largest bucket, so the two never race for a file. D is split
 * into rounds; in each round the consumer and the floor run back to back, their order rotating,
 * after a `sync -f`. The ratio to the floor is the median round (min–max).
 *
 *   node bench/backlog.mjs [--sizes 1000,100000,1000000] [--drain 2000] [--rounds 4]
 *                          [--producers 2] [--batch 1000] [--dir /path] [--keep] [--no-align]
 *                          [--prefetch N] (the consumer's; default: the library's)
 */
import { execFileSync, fork } from 'node:child_process';
import { constants as C, closeSync, openSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DIST, fmt, nowMs, percentile, rate, sleep } from './common.mjs';
import { nextMessage } from './drain.mjs';

const CONSUMER = fileURLToPath(new URL('./backlog-child.mjs', import.meta.url));
const PRODUCER = fileURLToPath(new URL('./backlog-fill-child.mjs', import.meta.url));
const GROUP = 'default';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,100000,1000000' },
    drain: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '4' },
    producers: { type: 'string', default: String(Math.min(4, Math.max(1, cpus().length))) },
    batch: { type: 'string', default: '1000' },
    dir: { type: 'string', default: tmpdir() },
    keep: { type: 'boolean', default: false },
    'no-align': { type: 'boolean', default: false },
    prefetch: { type: 'string' },
  },
});
const config = {
  sizes: values.sizes.split(',').map((s) => Number(s.replaceAll('_', ''))),
  drain: Number(values.drain),
  rounds: Number(values.rounds),
  producers: Number(values.producers),
  batch: Number(values.batch),
  dir: values.dir,
  align: !values['no-align'],
};
for (const n of config.sizes) if (!Number.isInteger(n) || n < 3) throw new Error(`bad backlog size ${n}: at least 3`);

const progress = (line) => process.stderr.write(`[backlog] ${line}\n`);

/** Load average and CPU pressure (PSI): how busy the shared machine was. */
async function load() {
  const read = (f) => readFile(f, 'utf8').catch(() => '');
  const loadavg = (await read('/proc/loadavg')).split(' ').slice(0, 3).join(' ');
  const cpu = /avg60=([\d.]+)/.exec(await read('/proc/pressure/cpu'))?.[1];
  return `load average ${loadavg || '?'}${cpu ? `, CPU pressure (some, avg60) ${cpu}%` : ''}`;
}

function settle(dir) {
  try {
    execFileSync('sync', ['-f', dir]);
  } catch {
    // sync -f is coreutils >= 8.24; without it the noise is only a little larger
  }
}

/** P producer processes push `count` messages in all; resolves to the wall time. */
async function fill(spool, count) {
  const producers = Math.max(1, Math.min(config.producers, Math.ceil(count / config.batch)));
  // Create the spool and the group first, so the producers do not race to make them.
  const { openQueue } = await import(DIST);
  await (await openQueue(spool, { codec: 'raw', durability: 'none' })).close();
  // Start at a bucket boundary, so the first bucket (the one the consumer drains) is a full
  // one, as in a backlog built at this rate, not the random tail of the bucket the fill began in.
  const { bucketMs } = JSON.parse(await readFile(join(spool, 'spoolq.json'), 'utf8'));
  if (config.align) await sleep(bucketMs - (Date.now() % bucketMs) + 5);
  const shares = Array.from({ length: producers }, (_, i) => Math.floor(count / producers) + (i < count % producers ? 1 : 0));
  const start = nowMs();
  const children = shares.map((share) => fork(PRODUCER, [spool, String(share), String(config.batch)], { stdio: 'inherit' }));
  const done = await Promise.all(children.map((c) => nextMessage(c, 'done')));
  const ms = nowMs() - start;
  if (done.reduce((s, d) => s + d.count, 0) !== count) throw new Error('the producers pushed a wrong count');
  return { ms, producers };
}

/** The ready buckets of the group, sorted, each with its sorted names. */
async function layout(ready) {
  const buckets = [];
  for (const bucket of (await readdir(ready)).sort()) {
    buckets.push({ bucket, dir: join(ready, bucket), names: (await readdir(join(ready, bucket))).sort() });
  }
  return buckets;
}

/**
 * `count` ready files the consumer will not reach: the end of the largest bucket, past the
 * first `skip` names of the delivery order (those the consumer takes); else the global end.
 */
function floorFiles(buckets, skip, count) {
  const ordered = buckets.flatMap((b) => b.names.map((name) => ({ dir: b.dir, name })));
  const reachable = new Set(ordered.slice(0, skip).map((f) => f.name));
  const largest = buckets.reduce((a, b) => (b.names.length > a.names.length ? b : a));
  const candidates = largest.names.filter((n) => !reachable.has(n)).map((name) => ({ dir: largest.dir, name }));
  if (candidates.length >= count) return { files: candidates.slice(-count), bucketSize: largest.names.length };
  return { files: ordered.slice(-count), bucketSize: null };
}

/**
 * The claim floor of floor.mjs on files of the spool: rename → lease dir, open, read, close,
 * unlink, synchronous calls as the consumer makes them.
 */
async function claimFloor(files, leased) {
  const buffer = Buffer.alloc(4096);
  const start = nowMs();
  for (const { dir, name } of files) {
    const to = join(leased, `${name}~floor`);
    renameSync(join(dir, name), to);
    const fd = openSync(to, C.O_RDONLY);
    try {
      readSync(fd, buffer, 0, buffer.length, 0);
    } finally {
      closeSync(fd);
    }
    unlinkSync(to);
  }
  return nowMs() - start;
}

async function measure(n) {
  const work = await mkdtemp(join(config.dir, 'spoolq-backlog-'));
  const spool = join(work, 'spool');
  const leased = join(work, 'floor-leased');
  await mkdir(leased);
  let child = null;
  try {
    progress(`N=${n}: filling ${spool}`);
    const filled = await fill(spool, n);
    progress(`N=${n}: filled in ${(filled.ms / 1000).toFixed(1)} s (${fmt.rate((n * 1000) / filled.ms)} msgs/s); sync -f`);
    settle(work);
    const buckets = await layout(join(spool, 'groups', GROUP, 'ready'));
    const listed = buckets.reduce((s, b) => s + b.names.length, 0);
    if (listed !== n) throw new Error(`listed ${listed} ready files, ${n} were pushed`);
    const drain = Math.min(config.drain, Math.floor((n - 1) / 2));
    const rounds = Math.max(1, Math.min(config.rounds, drain));
    const floor = floorFiles(buckets, drain + 1, drain);
    const shape = {
      buckets: buckets.length,
      largest: Math.max(...buckets.map((b) => b.names.length)),
      first: buckets[0].names.length,
      floorBucket: floor.bucketSize,
    };
    buckets.length = 0; // let the names go

    child = fork(CONSUMER, [spool, values.prefetch ?? ''], { stdio: 'inherit' });
    const ready = await nextMessage(child, 'ready');
    progress(
      `N=${n}: openQueue ${fmt.ms(ready.openMs)} ms, first pop ${fmt.ms(ready.firstPopMs)} ms; draining ${drain} in ${rounds} rounds`,
    );

    const perRound = [];
    let offset = 0;
    for (let r = 0; r < rounds; r++) {
      const count = Math.floor(drain / rounds) + (r < drain % rounds ? 1 : 0);
      const files = floor.files.slice(offset, offset + count);
      offset += count;
      const round = { count };
      const steps = {
        spoolq: async () => {
          const reply = nextMessage(child, 'drained');
          child.send({ type: 'drain', count });
          const d = await reply;
          round.spoolqMs = d.ms;
          round.cpuMs = d.cpuMs;
          round.rssKb = d.rssKb;
        },
        floor: async () => {
          round.floorMs = await claimFloor(files, leased);
        },
      };
      for (const step of r % 2 === 0 ? ['spoolq', 'floor'] : ['floor', 'spoolq']) {
        settle(work);
        await steps[step]();
      }
      perRound.push(round);
    }
    const closed = nextMessage(child, 'closed');
    child.send({ type: 'close' });
    const { maxRssKb, peakKb } = await closed;
    progress(
      `N=${n}: consumer peak RSS ${fmt.mb(maxRssKb)}; sampled peak RSS by phase (MB): ${JSON.stringify(peakKb, (k, v) => (k ? Math.round(v / 1024) : v))}`,
    );
    child = null;

    const sum = (key) => perRound.reduce((s, r) => s + r[key], 0);
    const ratios = perRound.map((r) => r.spoolqMs / r.floorMs).sort((a, b) => a - b);
    return {
      n,
      ...shape,
      fillMs: filled.ms,
      producers: filled.producers,
      openMs: ready.openMs,
      firstPopMs: ready.firstPopMs,
      drain,
      rounds,
      spoolq: rate(drain, sum('spoolqMs')),
      cpuUsPerMsg: (sum('cpuMs') * 1000) / drain,
      floor: rate(drain, sum('floorMs')),
      ratio: { median: percentile(ratios, 50), min: ratios[0], max: ratios.at(-1) },
      maxRssKb,
      importedRssKb: ready.importedRssKb,
      afterFirstPopRssKb: ready.afterFirstPopRssKb,
      perRound,
      peakKb,
    };
  } finally {
    if (child && child.exitCode === null) child.kill();
    if (values.keep) {
      progress(`N=${n}: kept ${work}`);
    } else {
      const start = nowMs();
      await rm(work, { recursive: true, force: true });
      progress(`N=${n}: removed the spool in ${((nowMs() - start) / 1000).toFixed(1)} s`);
    }
  }
}

const ratioCell = (r) => `${fmt.ratio(r.median)}${r.max > r.min ? ` (${fmt.ratio(r.min)}–${fmt.ratio(r.max)})` : ''}`;
const mb = (kb) => fmt.mb(kb).replace(' MB', '');

const before = await load();
const results = [];
for (const n of config.sizes) results.push(await measure(n));
const after = await load();

const base = results[0];
const print = (line = '') => process.stdout.write(`${line}\n`);
print(`## Backlog scaling (issue 6)`);
print();
print(
  `node ${process.version}, ${cpus().length} CPUs; ${before} before, ${after} after. Fill: pushMany(${config.batch}) from up to ${config.producers} producer processes, 256 B, durability 'none', envelopes: false (a file per message).`,
);
print(
  `Consumer: fresh process, pop({ timeoutMs: 0 }) + ack of D = min(${config.drain}, (N−1)/2) messages in ${config.rounds} rounds interleaved with the claim floor (rename → lease dir, open, read, close, unlink) on other files of the same spool.`,
);
print(
  `Fill ${config.align ? 'started at a bucket boundary' : 'not aligned to a bucket boundary'}. Ratio to floor: median round (range). "vs ${base.n.toLocaleString('en-US')}": µs/msg of the row ÷ µs/msg of the first row (1.00 = flat), and the same for the ratio to floor (less sensitive to the machine's load).`,
);
print();
print(
  '| backlog | buckets: count, first / largest | fill s | openQueue ms | first pop ms | drained | drain msgs/s | µs/msg | consumer CPU µs/msg | floor µs/msg | ratio to floor | µs/msg vs first row | ratio to floor vs first row | peak RSS MB |',
);
print(
  '| ------: | ----------------- | -----: | -----------: | -----------: | ------: | -----------: | -----: | ------------------: | -----------: | -------------- | ------------------: | --------------------------: | ----------: |',
);
for (const r of results) {
  print(
    `| ${r.n.toLocaleString('en-US')} | ${r.buckets}, ${r.first.toLocaleString('en-US')} / ${r.largest.toLocaleString('en-US')} | ${(r.fillMs / 1000).toFixed(1)} | ${fmt.ms(r.openMs)} | ${fmt.ms(r.firstPopMs)} | ${r.drain} | ${fmt.rate(r.spoolq.perSec)} | ${fmt.us(r.spoolq.usPerMsg)} | ${fmt.us(r.cpuUsPerMsg)} | ${fmt.us(r.floor.usPerMsg)} | ${ratioCell(r.ratio)} | ${fmt.ratio(r.spoolq.usPerMsg / base.spoolq.usPerMsg)} | ${fmt.ratio(r.ratio.median / base.ratio.median)} | ${mb(r.maxRssKb)} |`,
  );
}
print();
print('Raw numbers:');
print();
print('```json');
print(JSON.stringify({ config, before, after, results }, null, 1));
print('```');
