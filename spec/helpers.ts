/** Shared helpers for specs: temporary spools, child processes, polling. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built library: child processes import it, as users do. `npm test` builds first. */
export const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

const made: string[] = [];

/** A fresh directory under the OS temp dir (real ext4 here), removed by `cleanup()`. */
export async function tempDir(prefix = 'spoolq-spec-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A path for a spool that does not exist yet (openQueue creates it). */
export async function spoolPath(): Promise<string> {
  return join(await tempDir(), 'spool');
}

export async function cleanup(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  /** Resolves when a line of stdout satisfies `test`. */
  line: (test: (line: string) => boolean, timeoutMs?: number) => Promise<string>;
}

/** Runs `spec/fixtures/<name>` with node; args are passed through. */
export function runFixture(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [join(FIXTURES, name), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  proc.stdout?.on('data', (d) => {
    out += d;
    for (const l of listeners) l();
  });
  proc.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const line = (test: (line: string) => boolean, timeoutMs = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = out.split('\n').find(test);
        if (found !== undefined) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no matching line from ${name} within ${timeoutMs} ms; stdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  return { proc, stdout: () => out, stderr: () => err, exited, line };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every file below `dir`, as paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** mulberry32: a small seeded generator, so that a failing run's random choices can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * fast-check run parameters: `numRuns`, overridden by SPOOLQ_FC_RUNS; SPOOLQ_FC_SEED and
 * SPOOLQ_FC_PATH replay a failure that fast-check printed.
 */
export function fcParams(numRuns: number): { numRuns: number; seed?: number; path?: string } {
  const { SPOOLQ_FC_SEED: seed, SPOOLQ_FC_PATH: path, SPOOLQ_FC_RUNS: runs } = process.env;
  return {
    numRuns: runs ? Number(runs) : numRuns,
    ...(seed ? { seed: Number(seed) } : {}),
    ...(path ? { path } : {}),
  };
}
