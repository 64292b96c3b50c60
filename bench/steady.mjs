/**
 * A producer beside a consumer: one process pushes 256 B messages one after another (durability
 * 'none') for a number of seconds while a consumer process takes them as they come, and the
 * push time is recorded second by second. The consumer either acknowledges each message (its
 * file is deleted) or holds it (nothing is deleted), and the raw floor runs the same way: a
 * sequential raw write (tmp write + rename) beside a process that unlinks each file, or renames
 * it away.
 *
 * Why: on an ext4 without a journal, the inode allocator skips, one by one, every inode of the
 * group freed in the last 60 s (360 s while its inode-table block is dirty), so a file created
 * while another process deletes files nearby costs in proportion to those deletions
 * (Workspace#creationCost, bench/README.md). The other benches create and consume apart.
 *
 *   node bench/steady.mjs [--seconds 15] [--rounds 2]
 *
 * A run shorter than that window sees the cost grow, not its steady level: give --seconds 120+
 * for that (and the machine several minutes).
 *
 * Order: per round, both "hold" runs, then both "ack" runs, each in a fresh directory, and each
 * only once a file creation in the workspace costs 40 µs or less again (or 90 s have passed:
 * Workspace#settleCreation), so that no run pays for the deletions of the one before.
 */
import { fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DIST, fmt, loadLine, machineInfo, nowMs, PAYLOAD, percentile, report, Workspace } from './common.mjs';
import { nextMessage } from './drain.mjs';
import { floorDirs, writeOne } from './floor.mjs';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '15' }, rounds: { type: 'string', default: '2' } } });
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const { openQueue } = await import(DIST);
const ws = new Workspace();
const { print, save } = report();

/** µs per message, second by second, of `produce` (one message per call) beside a consumer in `mode`. */
async function beside(path, mode, produce) {
  const child = fork(new URL('./steady-child.mjs', import.meta.url), [path, mode], { stdio: 'inherit' });
  await nextMessage(child, 'ready');
  const perSecond = [];
  for (let s = 0; s < seconds; s++) {
    const end = nowMs() + 1000;
    const start = nowMs();
    let n = 0;
    while (nowMs() < end) {
      await produce();
      n++;
    }
    perSecond.push(((nowMs() - start) * 1000) / n);
  }
  const done = nextMessage(child, 'done');
  child.send('stop');
  const { count } = await done;
  return { perSecond, consumed: count };
}

async function spoolqRun(mode) {
  const q = await openQueue(await ws.spool(`spoolq-${mode}`), { codec: 'raw', durability: 'none' });
  try {
    return await beside(q.dir, mode, () => q.push(PAYLOAD));
  } finally {
    await q.close();
  }
}

/** The raw floor of floor.mjs (tmp write + rename, no syncs), one file a call. */
async function floorRun(mode) {
  const dir = await ws.dir(`floor-${mode}`);
  const dirs = await floorDirs(dir);
  mkdirSync(join(dir, 'held'));
  let i = 0;
  try {
    return await beside(dir, `floor-${mode}`, () => writeOne(dirs, `m${i++}`, false));
  } finally {
    await dirs.close();
  }
}

const summary = (perSecond) => {
  const sorted = [...perSecond].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), min: sorted[0], max: sorted.at(-1) };
};

try {
  const m = machineInfo();
  print(`## spoolq steady bench, ${m.date}`);
  print();
  print(`${m.cpus} CPUs (${m.cpu}), Linux ${m.kernel}, Node ${m.node}, ${m.tmpdir}. ${rounds} rounds of ${seconds} s per run.`);
  print(`Before: ${await loadLine()}; a file creation in the workspace ${fmt.us(await ws.creationCost())} µs; ${ws.placement}.`);
  print();
  const results = [];
  for (let r = 0; r < rounds; r++) {
    for (const mode of ['hold', 'ack']) {
      for (const [system, run] of [
        ['floor', floorRun],
        ['spoolq', spoolqRun],
      ]) {
        const settled = await ws.settleCreation();
        const result = await run(mode);
        results.push({ round: r, mode, system, settled, ...result });
        console.error(
          `(round ${r + 1}, ${system} beside a consumer that ${mode}s, after ${(settled.waitedMs / 1000).toFixed(0)} s for a creation to cost ${fmt.us(settled.us)} µs: ${result.perSecond.map((v) => v.toFixed(0)).join(' ')})`,
        );
      }
    }
  }
  print('| producer | consumer | µs per message, median second (range) | messages consumed | creation before the run (µs) |');
  print('|---|---|---|---:|---|');
  for (const mode of ['hold', 'ack']) {
    for (const system of ['floor', 'spoolq']) {
      const rows = results.filter((x) => x.mode === mode && x.system === system);
      const s = summary(rows.flatMap((x) => x.perSecond));
      const consumer = mode === 'ack' ? 'deletes each (ack / unlink)' : 'keeps each (hold / rename away)';
      print(
        `| ${system === 'floor' ? 'raw floor (tmp write + rename)' : 'spoolq push'} | ${consumer} | ${fmt.us(s.median)} (${fmt.us(s.min)}–${fmt.us(s.max)}) | ${rows.map((x) => x.consumed.toLocaleString('en-US')).join(' / ')} | ${rows.map((x) => fmt.us(x.settled.us)).join(' / ')} |`,
      );
    }
  }
  print();
  print(`After: ${await loadLine()}; a file creation in the workspace ${fmt.us(await ws.creationCost())} µs.`);
  await save(new URL('./results/', import.meta.url), { machine: m, seconds, rounds, results });
} finally {
  await ws.cleanup();
}
