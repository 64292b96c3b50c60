/** Small helpers shared by the benchmarks: temp dirs, clocks, percentiles, formatting. */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

/** One root directory under os.tmpdir() per run; every measurement gets a fresh subdirectory. */
export class Workspace {
  #root = null;
  #n = 0;

  async root() {
    this.#root ??= await mkdtemp(join(tmpdir(), 'spoolq-bench-'));
    return this.#root;
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
   */
  async settle() {
    try {
      execFileSync('sync', ['-f', await this.root()]);
    } catch {
      // sync -f is coreutils >= 8.24; without it the noise is only a little larger
    }
  }

  async cleanup() {
    if (this.#root) await rm(this.#root, { recursive: true, force: true });
    this.#root = null;
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
