/**
 * `npm run bench`: every spoolq workload next to the raw file-system floor, measured in the same
 * run, in the same directory tree under os.tmpdir(), interleaved round by round so that drift of
 * this shared machine hits both alike. Prints markdown tables and saves them with the raw numbers
 * in bench/results/ (git-ignored). See bench/README.md.
 *
 *   node bench/run.mjs [--quick] [--rounds 5] [--n-none 2000] [--n-fsync 500] [--samples 300]
 *                      [--only push,drain,latency,fanout]
 * The fan-out workload publishes half as many messages (each one goes to 10 groups).
 * Each flag also reads an environment variable: BENCH_ROUNDS, BENCH_N_NONE, BENCH_N_FSYNC,
 * BENCH_SAMPLES, BENCH_ONLY, BENCH_QUICK=1.
 */
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import {
  fmt,
  interleaver,
  loadLine,
  machineInfo,
  rate,
  ratioCell,
  report,
  roundRatio,
  roundShare,
  summarize,
  Workspace,
} from './common.mjs';
import { drainWorkload } from './drain.mjs';
import { fanoutBench } from './fanout.mjs';
import { claimFloor, writeFloor } from './floor.mjs';
import { latencyWorkload } from './latency.mjs';
import { KINDS, pushWorkload } from './push.mjs';

const env = process.env;
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: env.BENCH_QUICK === '1' },
    rounds: { type: 'string', default: env.BENCH_ROUNDS },
    'n-none': { type: 'string', default: env.BENCH_N_NONE },
    'n-fsync': { type: 'string', default: env.BENCH_N_FSYNC },
    samples: { type: 'string', default: env.BENCH_SAMPLES },
    only: { type: 'string', default: env.BENCH_ONLY ?? 'push,drain,latency,fanout' },
  },
});
const q = args.quick;
const config = {
  rounds: Number(args.rounds ?? (q ? 1 : 5)),
  count: { none: Number(args['n-none'] ?? (q ? 300 : 2000)), fsync: Number(args['n-fsync'] ?? (q ? 60 : 500)) },
  samples: Number(args.samples ?? (q ? 60 : 300)),
  only: new Set(args.only.split(',')),
};

const ws = new Workspace();
const { print, save } = report();
const results = { config, machine: machine(), push: [], drain: [], latency: [], fanout: null };

const share = (total, r) => roundShare(total, config.rounds, r);
const interleaved = interleaver(ws, config.rounds);

async function benchPush() {
  print('### Push throughput (one producer process, 256 B, one group)');
  print();
  print('Floor: the sequential raw write of the same durability (tmp write [+ fdatasync] + rename [+ dir fsync] per message).');
  print('Ratio: spoolq µs/msg ÷ floor µs/msg, median of the rounds (range); < 1 is faster than a sequential raw producer.');
  print('The "raw, 16 in flight" rows are not spoolq: the raw write with 16 in flight, each message fsyncing the directory itself.');
  print();
  print('| workload | durability | messages | µs/msg | msgs/s | floor µs/msg | floor msgs/s | ratio to floor (range) |');
  print('|---|---|---:|---:|---:|---:|---:|---|');
  const rows = { ...Object.fromEntries(Object.entries(KINDS).map(([k, v]) => [k, v.label])), raw16: 'raw, 16 in flight' };
  for (const durability of ['none', 'fsync']) {
    const total = config.count[durability];
    const sync = durability === 'fsync';
    for (const [kind, label] of Object.entries(rows)) {
      const t = await interleaved({
        floor: async (r) => writeFloor(await ws.dir('floor'), { count: share(total, r), sync }),
        spoolq:
          kind === 'raw16'
            ? async (r) => writeFloor(await ws.dir('raw16'), { count: share(total, r), sync, concurrency: 16 })
            : async (r) => pushWorkload(await ws.spool(`push-${kind}`), { kind, durability, count: share(total, r) }),
      });
      const r = roundRatio(t.spoolq, t.floor);
      results.push.push({ kind, durability, spoolq: t.spoolq, floor: t.floor, ratio: r });
      print(
        `| ${label} | ${durability} | ${t.spoolq.count} | ${fmt.us(t.spoolq.usPerMsg)} | ${fmt.rate(t.spoolq.perSec)} | ` +
          `${fmt.us(t.floor.usPerMsg)} | ${fmt.rate(t.floor.perSec)} | ${ratioCell(r)} |`,
      );
    }
  }
  print();
}

async function benchDrain() {
  print('### Cross-process drain: pop({ timeoutMs: 0 }) + ack until empty (256 B, prefilled, durability none)');
  print();
  print('Floors, one process: claim = rename into leased/ + open, read, close + unlink per message; write = the no-sync write floor.');
  print('Ratios: spoolq µs/msg (wall time of all consumers together) ÷ floor µs/msg, median of the rounds (range).');
  print();
  print(
    '| consumers | messages | µs/msg | msgs/s | split | consumer CPU µs/msg | claim floor µs/msg | ratio | write floor µs/msg | ratio | consumer peak RSS |',
  );
  print('|---:|---:|---:|---:|---|---:|---:|---|---:|---|---:|');
  const total = config.count.none;
  for (const consumers of [1, 2]) {
    let split = [];
    let rss = 0;
    let cpuMs = 0;
    const t = await interleaved({
      claim: async (r) => claimFloor(await ws.dir('claim-floor'), { count: share(total, r) }),
      write: async (r) => writeFloor(await ws.dir('floor'), { count: share(total, r), sync: false }),
      spoolq: async (r) => {
        const d = await drainWorkload(await ws.spool(`drain-${consumers}`), { count: share(total, r), consumers }, () => ws.settle());
        split = split.length ? split.map((s, i) => s + d.perConsumer[i]) : d.perConsumer;
        rss = Math.max(rss, d.maxRssKb);
        cpuMs += d.cpuMs;
        return d;
      },
    });
    const claim = roundRatio(t.spoolq, t.claim);
    const write = roundRatio(t.spoolq, t.write);
    results.drain.push({
      consumers,
      spoolq: t.spoolq,
      claimFloor: t.claim,
      writeFloor: t.write,
      claim,
      write,
      split,
      cpuMs,
      maxRssKb: rss,
    });
    print(
      `| ${consumers} | ${t.spoolq.count} | ${fmt.us(t.spoolq.usPerMsg)} | ${fmt.rate(t.spoolq.perSec)} | ${split.join('/')} | ` +
        `${fmt.us((cpuMs * 1000) / t.spoolq.count)} | ${fmt.us(t.claim.usPerMsg)} | ${ratioCell(claim)} | ` +
        `${fmt.us(t.write.usPerMsg)} | ${ratioCell(write)} | ${fmt.mb(rss)} |`,
    );
  }
  print();
}

async function benchLatency() {
  print('### Push-to-handler wake latency, cross-process (one message every 5-10 ms)');
  print();
  print('spoolq: consume() in another process. Floor: the raw floor write, and fs.watch (inotify) + read in another process.');
  print("push→handler starts before the publish, so in 'fsync' it includes the fdatasync and the directory fsync.");
  print('notify→handler is the wake-up alone: from push() resolved (spoolq rings its doorbell just before; in');
  print("'fsync' while the directory fsync runs, so its wake-up can be longer by up to that fsync), or from the");
  print('rename (floor: inotify fires then, before the directory fsync). Times in ms.');
  print();
  print('| durability | measure | spoolq p50 | spoolq p99 | spoolq max | floor p50 | floor p99 | floor max | ratio p50 | ratio p99 |');
  print('|---|---|---:|---:|---:|---:|---:|---:|---|---|');
  for (const durability of ['none', 'fsync']) {
    const lists = { spoolq: { latency: [], wake: [], publish: [] }, floor: { latency: [], wake: [], publish: [] } };
    let rss = 0;
    const runOne = (kind) => async (r) => {
      const dir = kind === 'spoolq' ? await ws.spool('latency') : await ws.dir('latency-floor');
      const res = await latencyWorkload(dir, { kind, durability, samples: share(config.samples, r) });
      for (const key of Object.keys(lists[kind])) lists[kind][key].push(...res[key]);
      if (kind === 'spoolq') rss = Math.max(rss, res.maxRssKb);
      return rate(res.latency.length, 1); // the rate is unused here
    };
    await interleaved({ floor: runOne('floor'), spoolq: runOne('spoolq') });
    const row = { durability, maxRssKb: rss };
    for (const [key, label] of [
      ['latency', 'push→handler'],
      ['wake', 'notify→handler'],
      ['publish', 'publish call'],
    ]) {
      const s = summarize(lists.spoolq[key]);
      const f = summarize(lists.floor[key]);
      row[key] = { spoolq: s, floor: f };
      print(
        `| ${durability} | ${label} | ${fmt.ms(s.p50)} | ${fmt.ms(s.p99)} | ${fmt.ms(s.max)} | ${fmt.ms(f.p50)} | ${fmt.ms(f.p99)} | ${fmt.ms(f.max)} | ` +
          `${fmt.ratio(s.p50 / f.p50)} | ${fmt.ratio(s.p99 / f.p99)} |`,
      );
    }
    results.latency.push(row);
  }
  const rssList = results.latency.map((r) => fmt.mb(r.maxRssKb)).join(', ');
  print();
  print(`Samples: ${config.samples} per durability and kind. Consumer peak RSS (none, fsync): ${rssList}.`);
  print();
}

async function benchFanout() {
  results.fanout = await fanoutBench({
    ws,
    interleaved,
    print,
    counts: { none: Math.ceil(config.count.none / 2), fsync: Math.ceil(config.count.fsync / 2) },
    rounds: config.rounds,
    routingIterations: q ? 100 : 500,
  });
}

function machine() {
  let fs = 'unknown';
  try {
    fs = execFileSync('df', ['-T', tmpdir()], { encoding: 'utf8' }).split('\n')[1].split(/\s+/)[1];
  } catch {}
  return { ...machineInfo(), fs };
}

const started = Date.now();
try {
  const m = results.machine;
  print(`## spoolq bench, ${m.date}`);
  print();
  print(`${m.cpus} CPUs (${m.cpu}), ${m.memGiB} GiB RAM, Linux ${m.kernel}, Node ${m.node}, ${m.tmpdir} on ${m.fs}.`);
  print(
    `Rounds ${config.rounds}; messages per workload: ${config.count.none} (none), ${config.count.fsync} (fsync); latency samples ${config.samples}.`,
  );
  results.loadBefore = await loadLine();
  results.creationBefore = await ws.creationCost();
  results.spread = ws.spread;
  print(`Before: ${results.loadBefore}; a file creation in the workspace ${fmt.us(results.creationBefore)} µs; ${ws.placement}.`);
  print();
  // Warm-up (untimed): JIT of both code paths and the directory caches.
  await writeFloor(await ws.dir('warmup'), { count: 200, sync: false });
  await pushWorkload(await ws.spool('warmup'), { kind: 'seq', durability: 'none', count: 200 });
  // The workloads that delete files (the drain's acks, the latency consumers') go last: on an
  // ext4 without a journal every file created in the next seconds to minutes pays for the
  // inodes they free (Workspace#creationCost), and the floors and pushes create a file each.
  if (config.only.has('push')) await benchPush();
  if (config.only.has('fanout')) await benchFanout();
  if (config.only.has('latency')) await benchLatency();
  if (config.only.has('drain')) await benchDrain();
  results.loadAfter = await loadLine();
  results.creationAfter = await ws.creationCost();
  print(
    `After: ${results.loadAfter}; a file creation in the workspace ${fmt.us(results.creationAfter)} µs. Total time ${((Date.now() - started) / 1000).toFixed(0)} s.`,
  );
  await save(new URL('./results/', import.meta.url), results);
} finally {
  await ws.cleanup();
}
