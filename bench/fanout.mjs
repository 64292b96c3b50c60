/**
 * Pub/sub fan-out (issue 4): one publish delivered to 10 subscriber groups (one inode, a hard link
 * per group) next to a push into a spool with one group, next to the 10 separate pushes that
 * fan-out replaces, and next to the raw file-system floors of both, all interleaved round by round.
 * 256 B raw payloads; the producer is a publish-only handle (group: null), the groups were
 * created by other handles, closed before the timing.
 *
 *   floor1      raw, per message: open tmp/<i> O_EXCL, write, [fdatasync], close, rename into
 *               ready/, [fsync ready/]: the write floor of floor.mjs
 *   floor10     raw fan-out, per message: the same tmp write, link into 9 ready/ dirs, rename into
 *               the 10th, [fsync the 10 dirs, concurrently]. Directory handles stay open.
 *   single      spoolq, 1 group bound to '#'
 *   fanout      spoolq, 10 groups bound to '#', push without a topic
 *   topic       spoolq, 10 groups bound to 'orders.*', push with topic 'orders.created'
 *   route1of10  spoolq, 10 groups, 1 bound to '#' and 9 to 'audit.#', push without a topic: routed
 *               to 1 group, so all it adds to `single` is the routing read of 10 groups
 *   ten         10 spools of 1 group each, one handle each: the message pushed to each in turn
 *   tenPar      the same, the 10 pushes of a message in flight at once (Promise.all)
 *
 * Kinds: seq (one message at a time), conc16 (16 messages in flight), many100 (pushMany of 100).
 * In conc16 and many100, `ten` sends each message (or batch) to the 10 spools at once.
 * µs/msg is per message published, so `ten` counts 10 pushes as one message.
 *
 * Alone: node bench/fanout.mjs [--quick] [--rounds 5] [--n-none 1000] [--n-fsync 300]
 *                              [--durability none,fsync] [--kinds seq,conc16,many100]
 * One workload (for strace -f -c: run two counts and subtract to drop the setup; --keep leaves the
 * workspace, so that its removal is not counted):
 *        node bench/fanout.mjs --workload fanout|single|...|floor10 --kind seq --durability fsync --count 500 [--keep]
 */
import { execFileSync } from 'node:child_process';
import { constants as C, closeSync, fdatasync, fsync, linkSync, openSync, renameSync, writeSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DIST, fmt, interleaver, loadLine, nowMs, PAYLOAD, rate, ratioCell, roundRatio, roundShare, Workspace } from './common.mjs';

const { openQueue } = await import(DIST);

export const GROUPS = 10;
const CREATE = C.O_WRONLY | C.O_CREAT | C.O_EXCL;
const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);
const TOPIC = 'orders.created';

/**
 * The raw fan-out floor into `groups` ready/ directories (1 = the write floor of floor.mjs).
 * Resolves to the rate, plus the time spent per phase (ms): write (open, write, [fdatasync],
 * close), place (links + the rename), sync (the directory fsyncs).
 */
export async function fanoutFloor(dir, { count, sync, groups }) {
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const ready = [];
  for (let g = 0; g < groups; g++) {
    ready.push(join(dir, `g${g}`, 'ready'));
    await mkdir(ready[g], { recursive: true });
  }
  // The calls of floor.mjs's writeOne: flushes through the pool, the rest synchronous.
  const fds = ready.map((d) => openSync(d, C.O_RDONLY | C.O_DIRECTORY));
  const phases = { write: 0, place: 0, sync: 0 };
  try {
    const cpu = process.cpuUsage();
    const start = nowMs();
    for (let i = 0; i < count; i++) {
      const name = `m${i}`;
      const t0 = nowMs();
      const fd = openSync(join(tmp, name), CREATE, 0o600);
      try {
        if (writeSync(fd, PAYLOAD, 0, PAYLOAD.length) !== PAYLOAD.length) throw new Error('short write');
        if (sync) await fdatasyncAsync(fd);
      } finally {
        closeSync(fd);
      }
      const t1 = nowMs();
      for (let g = 0; g < groups - 1; g++) linkSync(join(tmp, name), join(ready[g], name));
      renameSync(join(tmp, name), join(ready[groups - 1], name));
      const t2 = nowMs();
      if (sync) await Promise.all(fds.map((fd) => fsyncAsync(fd)));
      const t3 = nowMs();
      phases.write += t1 - t0;
      phases.place += t2 - t1;
      phases.sync += t3 - t2;
    }
    return { ...rate(count, nowMs() - start), cpuUsPerMsg: cpuPerMsg(cpu, count), phases };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** CPU time of the process (main thread and libuv pool) since `since`, in µs per message. */
function cpuPerMsg(since, count) {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / count;
}

/** The spoolq setups: groups per spool, their bindings, the push options, how many spools. */
export const SETUPS = {
  single: { label: 'spoolq push, 1 group', spools: 1, bindings: ['#'] },
  fanout: { label: `spoolq fan-out, ${GROUPS} groups ('#')`, spools: 1, bindings: Array(GROUPS).fill('#') },
  topic: {
    label: `spoolq fan-out, ${GROUPS} groups ('orders.*'), topic`,
    spools: 1,
    bindings: Array(GROUPS).fill('orders.*'),
    topic: TOPIC,
  },
  route1of10: { label: `spoolq push, ${GROUPS} groups, 1 matches`, spools: 1, bindings: ['#', ...Array(GROUPS - 1).fill('audit.#')] },
  ten: { label: `${GROUPS} separate pushes, one after another`, spools: GROUPS, bindings: ['#'] },
  tenPar: { label: `${GROUPS} separate pushes, at once`, spools: GROUPS, bindings: ['#'], parallel: true },
};

/** Creates the spools and groups of a setup (untimed) and opens publish-only handles on them. */
export async function openSetup(root, setup, durability) {
  const queues = [];
  for (let s = 0; s < setup.spools; s++) {
    const dir = join(root, `spool${s}`);
    for (const [g, pattern] of setup.bindings.entries()) {
      const owner = await openQueue(dir, { group: `g${g}`, topics: [pattern], durability, codec: 'raw' });
      await owner.close();
    }
    queues.push(await openQueue(dir, { group: null, durability, codec: 'raw' }));
  }
  return queues;
}

/** Sends one message (or batch with `many`) through a setup's queues. */
function sender(setup, queues, many) {
  const options = setup.topic ? { topic: setup.topic } : undefined;
  const one = many ? (q, batch) => q.pushMany(batch, options) : (q) => q.push(PAYLOAD, options);
  if (queues.length === 1) return (batch) => one(queues[0], batch);
  if (setup.parallel || many) return (batch) => Promise.all(queues.map((q) => one(q, batch)));
  return async (batch) => {
    for (const q of queues) await one(q, batch);
  };
}

/** Publishes `count` messages through a fresh setup in `root`; resolves to the rate per message. */
export async function fanoutWorkload(root, { setup: setupName, kind, durability, count }) {
  const setup = SETUPS[setupName];
  const queues = await openSetup(root, setup, durability);
  try {
    let run;
    if (kind === 'many100') {
      const send = sender(setup, queues, true);
      const batch = Array.from({ length: 100 }, () => PAYLOAD);
      run = async () => {
        for (let done = 0; done < count; done += 100) await send(batch.slice(0, Math.min(100, count - done)));
      };
    } else {
      const send = sender(setup, queues, false);
      const inFlight = kind === 'conc16' ? 16 : 1;
      let next = 0;
      const worker = async () => {
        while (next++ < count) await send();
      };
      run = () => Promise.all(Array.from({ length: inFlight }, worker));
    }
    const cpu = process.cpuUsage();
    const start = nowMs();
    await run();
    return { ...rate(count, nowMs() - start), cpuUsPerMsg: cpuPerMsg(cpu, count) };
  } finally {
    await Promise.all(queues.map((q) => q.close()));
  }
}

/**
 * The routing read of a publish, alone, timed `iterations` times on a spool of `groups` groups:
 * by the library's own readRoutes (an internal module: '–' if it moved), which lists groups/
 * and, while that listing is unchanged, reuses the bindings it cached; and by hand, the read
 * without the cache: groups/, then each group's topics/ (concurrently).
 */
export async function routingRead(root, { groups, iterations }) {
  const dir = join(root, 'spool');
  for (let g = 0; g < groups; g++) await (await openQueue(dir, { group: `g${g}`, durability: 'none', codec: 'raw' })).close();
  const groupsDir = join(dir, 'groups');
  const byHand = async () => {
    const names = (await readdir(groupsDir)).filter((n) => !n.startsWith('.')); // .routes-* is no group
    await Promise.all(names.map((n) => readdir(join(groupsDir, n, 'topics'))));
  };
  const time = async (fn) => {
    for (let i = 0; i < 20; i++) await fn(); // warm-up
    const start = nowMs();
    for (let i = 0; i < iterations; i++) await fn();
    return ((nowMs() - start) * 1000) / iterations;
  };
  let library = Number.NaN;
  try {
    const { readRoutes } = await import(new URL('../dist/routing.js', import.meta.url).href);
    const { Spool } = await import(new URL('../dist/layout.js', import.meta.url).href);
    const spool = new Spool(dir, 10_000, { dir: 0o700, file: 0o600 });
    if ((await readRoutes(spool)).length === groups) library = await time(() => readRoutes(spool));
  } catch {
    // internals changed: the by-hand figure stays
  }
  return { groups, libraryUs: library, byHandUs: await time(byHand) };
}

/** The workloads of one (durability, kind): name → (round, ws) => rate. */
export function fanoutRuns({ durability, kind, share, ws }) {
  const sync = durability === 'fsync';
  const setups = kind === 'seq' ? ['single', 'fanout', 'topic', 'route1of10', 'ten', 'tenPar'] : ['single', 'fanout', 'ten'];
  // The floors run in every set, so each ratio compares runs made back to back in one round.
  const runs = {
    floor1: async (r) => fanoutFloor(await ws.dir('fanout-floor1'), { count: share(r), sync, groups: 1 }),
    floor10: async (r) => fanoutFloor(await ws.dir('fanout-floor10'), { count: share(r), sync, groups: GROUPS }),
  };
  for (const setup of setups) {
    runs[setup] = async (r) => fanoutWorkload(await ws.dir(`fanout-${setup}-${kind}`), { setup, kind, durability, count: share(r) });
  }
  return runs;
}

/** Which floor each workload is compared with, and how many floor messages one message is. */
const FLOOR_OF = {
  floor1: null,
  floor10: ['floor1', 1],
  single: ['floor1', 1],
  fanout: ['floor10', 1],
  topic: ['floor10', 1],
  route1of10: ['floor1', 1],
  ten: ['floor1', GROUPS],
  tenPar: ['floor1', GROUPS],
};
const LABEL = {
  floor1: 'raw floor, 1 group',
  floor10: `raw floor, fan-out to ${GROUPS}`,
  ...Object.fromEntries(Object.entries(SETUPS).map(([k, v]) => [k, v.label])),
};
const FLOOR_LABEL = { floor1: 'floor 1', floor10: `floor ${GROUPS}` };

/**
 * Runs every fan-out workload, interleaved, and prints the tables with `print`. `interleaved`
 * (runs → totals with .rounds) comes from the caller: run.mjs has its own. Every kind is compared
 * with the sequential raw floors, measured again in its own set (as in push.mjs: < 1 means faster
 * than a sequential raw producer). Resolves to all the numbers.
 */
export async function fanoutBench({
  ws,
  interleaved,
  print,
  counts,
  durabilities = ['none', 'fsync'],
  kinds = ['seq', 'conc16', 'many100'],
  rounds,
  routingIterations = 500,
}) {
  const results = { rows: [], ratios: [], floorPhases: [], routing: [] };
  print(`### Fan-out to ${GROUPS} groups (one producer process, 256 B, publish-only handle)`);
  print();
  print('µs/msg is per message published: for the separate pushes, one message is 10 pushes.');
  print(
    `Ratio to floor: µs/msg ÷ the sequential raw floor (fan-out rows: floor ${GROUPS}; separate pushes: ${GROUPS} × floor 1), median of the rounds (range).`,
  );
  print();
  print('| workload | kind | durability | messages | µs/msg | msgs/s | floor | floor µs/msg | ratio to floor |');
  print('|---|---|---|---:|---:|---:|---|---:|---|');
  const totals = {};
  for (const durability of durabilities) {
    const total = counts[durability];
    const share = (r) => roundShare(total, rounds, r);
    totals[durability] = {};
    for (const kind of kinds) {
      const t = await interleaved(fanoutRuns({ durability, kind, share, ws }));
      totals[durability][kind] = t;
      for (const [name, v] of Object.entries(t)) {
        const f = FLOOR_OF[name];
        const floor = f && t[f[0]];
        const r = floor ? roundRatio(v, floor, f[1]) : null;
        const floorUs = floor ? floor.usPerMsg * f[1] : Number.NaN;
        results.rows.push({ name, kind, durability, result: v, floor: f?.[0] ?? null, ratio: r });
        if (kind !== 'seq' && name.startsWith('floor')) continue; // the same floors as in seq: not printed again
        const label = kind !== 'seq' && name === 'ten' ? LABEL.tenPar : LABEL[name];
        const floorName = f ? `${f[1] > 1 ? `${f[1]} × ` : ''}${FLOOR_LABEL[f[0]]}` : '';
        print(
          `| ${label} | ${kind} | ${durability} | ${v.count} | ${fmt.us(v.usPerMsg)} | ${fmt.rate(v.perSec)} | ${floorName} | ` +
            `${fmt.us(floorUs)} | ${ratioCell(r)} |`,
        );
        if (kind === 'seq' && v.rounds[0]?.phases) {
          const sum = (k) => (v.rounds.reduce((s, x) => s + x.phases[k], 0) * 1000) / v.count;
          results.floorPhases.push({ name, durability, write: sum('write'), place: sum('place'), sync: sum('sync') });
        }
      }
    }
  }
  print();
  print(`Ratios per round (median (range)). "${GROUPS} pushes" is ${GROUPS} separate spools of 1 group.`);
  print();
  print(
    `| kind | durability | fan-out ÷ single push | fan-out ÷ ${GROUPS} pushes in turn | fan-out ÷ ${GROUPS} pushes at once | topic fan-out ÷ single | 1-of-${GROUPS} routed ÷ single | floor ${GROUPS} ÷ floor 1 |`,
  );
  print('|---|---|---|---|---|---|---|---|');
  for (const durability of durabilities) {
    for (const kind of kinds) {
      const t = totals[durability][kind];
      const ten = kind === 'seq' ? t.ten : null;
      const at = (a, b) => (t[a] && t[b] ? roundRatio(t[a], t[b]) : null);
      const row = {
        kind,
        durability,
        fanoutVsSingle: at('fanout', 'single'),
        fanoutVsTen: ten ? at('fanout', 'ten') : null,
        fanoutVsTenParallel: kind === 'seq' ? at('fanout', 'tenPar') : at('fanout', 'ten'),
        topicVsSingle: at('topic', 'single'),
        routeVsSingle: at('route1of10', 'single'),
        floor10VsFloor1: at('floor10', 'floor1'),
      };
      results.ratios.push(row);
      print(
        `| ${kind} | ${durability} | ${ratioCell(row.fanoutVsSingle)} | ${ratioCell(row.fanoutVsTen)} | ${ratioCell(row.fanoutVsTenParallel)} | ` +
          `${ratioCell(row.topicVsSingle)} | ${ratioCell(row.routeVsSingle)} | ${ratioCell(row.floor10VsFloor1)} |`,
      );
    }
  }
  if (results.floorPhases.length > 0) {
    print();
    print(
      'Where the raw floors spend their time (µs/msg): write = open + write [+ fdatasync] + close; place = links + rename; sync = directory fsyncs.',
    );
    print();
    print('| floor | durability | write | place | sync |');
    print('|---|---|---:|---:|---:|');
    for (const p of results.floorPhases)
      print(`| ${LABEL[p.name]} | ${p.durability} | ${fmt.us(p.write)} | ${fmt.us(p.place)} | ${fmt.us(p.sync)} |`);
  }
  if (routingIterations > 0) {
    print();
    print(
      `The routing read of one publish, alone (µs per read, ${routingIterations} reads, warm caches): the library's readRoutes (groups/ listed, bindings cached), and by hand without a cache (groups/, then each group's topics/).`,
    );
    print();
    print('| groups | readRoutes (library, cached) | uncached readdirs by hand |');
    print('|---:|---:|---:|');
    for (const groups of [1, GROUPS]) {
      const r = await routingRead(await ws.dir(`routing-${groups}`), { groups, iterations: routingIterations });
      results.routing.push(r);
      print(`| ${groups} | ${fmt.us(r.libraryUs)} | ${fmt.us(r.byHandUs)} |`);
    }
  }
  print();
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'n-none': { type: 'string' },
      'n-fsync': { type: 'string' },
      durability: { type: 'string', default: 'none,fsync' },
      kinds: { type: 'string', default: 'seq,conc16,many100' },
      workload: { type: 'string' },
      kind: { type: 'string', default: 'seq' },
      count: { type: 'string', default: '500' },
      keep: { type: 'boolean', default: false },
    },
  });
  const ws = new Workspace();
  try {
    if (values.workload) {
      // One workload alone, e.g. under strace -f -c.
      const count = Number(values.count);
      const durability = values.durability.split(',')[0];
      const r = values.workload.startsWith('floor')
        ? await fanoutFloor(await ws.dir('floor'), {
            count,
            sync: durability === 'fsync',
            groups: values.workload === 'floor1' ? 1 : GROUPS,
          })
        : await fanoutWorkload(await ws.dir('fanout'), { setup: values.workload, kind: values.kind, durability, count });
      console.log(
        `${LABEL[values.workload]}, ${values.kind}, ${durability}: ${r.usPerMsg.toFixed(1)} µs/msg, ${r.perSec.toFixed(0)} msgs/s, CPU ${r.cpuUsPerMsg.toFixed(0)} µs/msg`,
      );
    } else {
      const q = values.quick;
      const rounds = Number(values.rounds ?? (q ? 1 : 5));
      const counts = { none: Number(values['n-none'] ?? (q ? 100 : 1000)), fsync: Number(values['n-fsync'] ?? (q ? 30 : 300)) };
      const started = Date.now();
      let fs = '?';
      try {
        fs = execFileSync('df', ['-T', await ws.root()], { encoding: 'utf8' })
          .split('\n')[1]
          .split(/\s+/)[1];
      } catch {}
      console.log(
        `## spoolq fan-out bench, ${new Date().toISOString()}, ${await ws.root()} on ${fs}, rounds ${rounds}, messages ${counts.none} (none) / ${counts.fsync} (fsync)`,
      );
      console.log(`Before: ${await loadLine()}.`);
      console.log();
      // Warm-up (untimed): JIT of both code paths and the directory caches.
      await fanoutFloor(await ws.dir('warmup-floor'), { count: 100, sync: false, groups: GROUPS });
      await fanoutWorkload(await ws.dir('warmup'), { setup: 'fanout', kind: 'seq', durability: 'none', count: 100 });
      await fanoutBench({
        ws,
        interleaved: interleaver(ws, rounds),
        print: (line = '') => console.log(line),
        counts,
        durabilities: values.durability.split(','),
        kinds: values.kinds.split(','),
        rounds,
        routingIterations: q ? 100 : 500,
      });
      console.log(`After: ${await loadLine()}. Total time ${((Date.now() - started) / 1000).toFixed(0)} s.`);
    }
  } finally {
    if (values.keep) console.log(`kept ${await ws.root()}`);
    else await ws.cleanup();
  }
}
