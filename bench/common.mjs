/** Small helpers shared by the benchmarks: temp dirs, clocks, rounds, percentiles, formatting, the machine. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as C, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

/** The built library, imported as users import it (`npm run bench` builds first). */
export const DIST = new URL('../dist/index.js', import.meta.url).href;

/** 256 payload bytes: the message size of every throughput workload and of the floor. */
export const PAYLOAD = Buffer.alloc(256, 0x61);

/**
 * Monotonic time in ms (CLOCK_MONOTONIC). The same clock in every process of the machine, so a
 * timestamp taken by a producer can be compared with one taken by a consumer process.
 */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * This process's peak RSS in KiB since it started: VmHWM of /proc/self/status on Linux. Not
 * process.resourceUsage().maxRSS: Linux carries the high-water mark across fork and exec, so a
 * child's maxRSS starts at its parent's RSS at the spawn (a bench parent holding 1M ids made
 * every consumer "peak" at 157 MB while the consumer itself never passed 72 MB).
 */
export function peakRssKb() {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {}
  return process.resourceUsage().maxRSS;
}

/**
 * One directory per run under os.tmpdir(); every measurement gets a fresh subdirectory of it.
 *
 * Its place on disk is chosen so that a run is unlikely to pay for the files an earlier one
 * deleted. On an ext4 without a journal each file creation tests, one by one, every inode of its
 * block group freed in the last 60–360 s (creationCost), and a run's cleanup frees hundreds of
 * thousands.
 * Next to os.tmpdir(), where every run used to go, a run started soon after another created its
 * files at 220–1,000 µs each instead of 10–30, every file-per-message system and the floor
 * alike (bench/README.md, Results of 15:53). So the run's directory is made in a parent marked
 * as the top of a directory hierarchy (`chattr +T`), under a random name: ext4's Orlov
 * allocator places such a directory in the flex group with the fewest directories (and enough
 * free space), scanning from one chosen by a hash of its name, and the run's subdirectories and
 * files follow it there. Most groups of this disk have no directory at all, so the random name
 * decides, and one emptied by the last cleanup is picked only by chance: the "before" line's
 * creation cost shows it. `spread` says whether the mark took (null until the directory exists).
 */
export class Workspace {
  #parent = null;
  /** The run's directory, made once: a promise, so that concurrent first calls share it. */
  #root = null;
  #n = 0;
  spread = null;
  /** How many times settle() dropped the page cache. */
  cacheDrops = 0;

  root() {
    this.#root ??= this.#makeRoot();
    return this.#root;
  }

  async #makeRoot() {
    const parent = await mkdtemp(join(tmpdir(), 'spoolq-bench-'));
    this.#parent = parent;
    this.spread = markTopDirectory(parent);
    const root = join(parent, randomBytes(8).toString('hex'));
    await mkdir(root);
    return root;
  }

  /** For a bench's "After" line: whether the page cache was dropped before measurements (settle). */
  get cacheNote() {
    return this.cacheDrops > 0 ? `page cache dropped ${this.cacheDrops} times (--drop-caches)` : 'page cache not dropped';
  }

  /** For a bench's "Before" line: where the directories of the workspace went (see above). */
  get placement() {
    if (this.spread === null) return 'no directory made yet';
    return this.spread ? 'placed by a random name (chattr +T)' : "next to os.tmpdir()'s other directories (chattr +T failed)";
  }

  /** A fresh, existing directory. */
  async dir(label) {
    const dir = join(await this.root(), `${String(++this.#n).padStart(2, '0')}-${label}`);
    await mkdir(dir);
    return dir;
  }

  /** A path for a spool that does not exist yet (openQueue creates it). */
  async spool(label) {
    return join(await this.dir(label), 'spool');
  }

  /**
   * Flushes the file system of the workspace (`sync -f`), so dirty pages left by an earlier
   * measurement are not written back during the next synced one.
   *
   * With `dropCaches` (the peer bench's push rows, with --drop-caches), it then drops the clean
   * page cache (`/proc/sys/vm/drop_caches`, root only). Here, once a run had filled gigabytes of
   * page cache (its files stay until the end), a write() into new pages cost ~9 µs more a page:
   * the floor's 64 KiB write 17–25 µs → ~165, from a round that moved from run to run. Not every
   * system alike: in one run SQLite, which rewrites its WAL's pages, did not pay it, qlobber-fsq
   * little and spoolq the most; in another all of them did (bench/README.md, Results of 15:53).
   * So it is a cost a long-running host may show, and the drops are an option, not the default.
   */
  async settle({ dropCaches = false } = {}) {
    try {
      execFileSync('sync', ['-f', await this.root()]);
    } catch {
      // sync -f is coreutils >= 8.24; without it the noise is only a little larger
    }
    if (dropCaches) {
      try {
        writeFileSync('/proc/sys/vm/drop_caches', '1');
      } catch (error) {
        throw new Error(`dropping the page cache (--drop-caches) needs root on Linux: ${error.message}`);
      }
      this.cacheDrops++;
    }
  }

  /**
   * The cost of creating a file here: µs per open(O_CREAT | O_EXCL) of an empty file, median of
   * `count`, in a fresh directory of the workspace (the files stay until cleanup). Every
   * file-per-message system pays it per message, SQLite does not, and on an ext4 without a
   * journal it is not a constant: the inode allocator skips every inode of the group freed in
   * the last seconds to minutes (fs/ext4/ialloc.c, recently_deleted()), one by one, so after many
   * deletions nearby a creation took 550–1,000 µs here instead of 15–30 (bench/README.md).
   */
  async creationCost(count = 200) {
    const dir = await this.dir('creation-probe');
    const times = [];
    for (let i = 0; i < count; i++) {
      const t = nowMs();
      closeSync(openSync(join(dir, String(i)), C.O_CREAT | C.O_EXCL | C.O_WRONLY));
      times.push((nowMs() - t) * 1000);
    }
    return percentile(
      times.sort((a, b) => a - b),
      50,
    );
  }

  /**
   * Waits until a file creation here costs at most `belowUs` (probed every 5 s, for at most
   * `maxMs`): after many deletions nearby, an ext4 without a journal takes tens of seconds to
   * minutes to come back (creationCost). Resolves to the last probe and how long it waited.
   */
  async settleCreation(belowUs = 40, maxMs = 90_000) {
    const start = nowMs();
    for (;;) {
      const us = await this.creationCost();
      const waitedMs = nowMs() - start;
      if (us <= belowUs || waitedMs >= maxMs) return { us, waitedMs };
      await sleep(5_000);
    }
  }

  async cleanup() {
    if (this.#parent) await rm(this.#parent, { recursive: true, force: true });
    this.#parent = null;
    this.#root = null;
  }
}

/**
 * `chattr +T dir`; false where it cannot be done (no chattr, a file system other than ext2/3/4,
 * not allowed): the benches then run as before, with every directory near its parent.
 */
function markTopDirectory(dir) {
  try {
    execFileSync('chattr', ['+T', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** p50, p99 and max of a list of ms values. */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Splits `total` into `rounds` near-equal parts; round r gets part r. */
export const roundShare = (total, rounds, r) => Math.floor(total / rounds) + (r < total % rounds ? 1 : 0);

/**
 * `interleaved(runs)` for `rounds` rounds in `ws`: runs each of `runs` (name → (round) => rate)
 * once per round, rotating the order every round, after flushing the file system (`sync -f`)
 * and, with `dropCaches`, dropping the clean page cache (Workspace#settle); sums them per name,
 * and keeps each round (for the ratios and their range).
 */
export function interleaver(ws, rounds, { dropCaches = false } = {}) {
  return async (runs) => {
    const names = Object.keys(runs);
    const per = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(r + k) % names.length];
        await ws.settle({ dropCaches });
        per[name].push(await runs[name](r));
      }
    }
    return Object.fromEntries(
      names.map((n) => {
        const count = per[n].reduce((s, x) => s + x.count, 0);
        const ms = per[n].reduce((s, x) => s + x.ms, 0);
        return [n, { ...rate(count, ms), rounds: per[n] }];
      }),
    );
  };
}

/**
 * a's time per message ÷ (scaleB × b's), computed per round (the two ran in the same round) and
 * summarized as the median round with the range: robust to a stall of the machine in one round.
 * This is the floor ratio of bench/README.md (< 1: a is faster).
 */
export function roundRatio(a, b, scaleB = 1) {
  const list = a.rounds.map((x, i) => x.usPerMsg / (scaleB * b.rounds[i].usPerMsg)).sort((x, y) => x - y);
  return { median: percentile(list, 50), min: list[0], max: list.at(-1) };
}

/** A roundRatio as a table cell: "median× (min×–max×)", or '–' without one. */
export const ratioCell = (r) => (r ? `${fmt.ratio(r.median)}${r.max > r.min ? ` (${fmt.ratio(r.min)}–${fmt.ratio(r.max)})` : ''}` : '–');

/** A throughput result from a count and an elapsed time. */
export function rate(count, ms) {
  return { count, ms, usPerMsg: (ms * 1000) / count, perSec: (count * 1000) / ms };
}

export const fmt = {
  us: (v) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–'),
  ms: (v) => (Number.isFinite(v) ? (v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '–'),
  rate: (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–'),
  ratio: (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–'),
  mb: (kb) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(0)} MB` : '–'),
};

/** Load average and CPU pressure (PSI): how busy the shared machine was around a run. */
export async function loadLine() {
  const read = (f) => readFile(f, 'utf8').catch(() => '');
  const loadavg = (await read('/proc/loadavg')).split(' ').slice(0, 3).join(' ');
  const cpu = /avg60=([\d.]+)/.exec(await read('/proc/pressure/cpu'))?.[1];
  return `load average ${loadavg || '?'}${cpu ? `, CPU pressure (some, avg60) ${cpu}%` : ''}`;
}

/** The machine a run's results come from (each runner adds its own fields). */
export function machineInfo() {
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    kernel: release(),
    node: process.version,
    tmpdir: tmpdir(),
  };
}

/**
 * The printed report of a run: `print(line)` logs a line and keeps it; `save(dir, results)`
 * writes the lines to `dir`<date>.md and `results` to `dir`<date>.json (date: results.machine.date).
 */
export function report() {
  const lines = [];
  return {
    print: (line = '') => {
      lines.push(line);
      console.log(line);
    },
    async save(dir, results) {
      await mkdir(dir, { recursive: true });
      const stamp = results.machine.date.replace(/[:.]/g, '-');
      await writeFile(new URL(`${stamp}.md`, dir), `${lines.join('\n')}\n`);
      await writeFile(new URL(`${stamp}.json`, dir), `${JSON.stringify(results, null, 2)}\n`);
    },
  };
}
