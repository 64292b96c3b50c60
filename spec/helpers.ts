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

/** A child process whose stdout and stderr are collected as text. */
export interface Output {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
}

/**
 * Collects `proc`'s stdout and stderr as text. `exited` resolves on the process's `until` event:
 * 'exit', or 'close' (its stdio closed too, so the output is complete). `onStdout` runs after
 * each chunk of stdout.
 */
export function collectOutput(proc: ChildProcess, until: 'exit' | 'close' = 'exit', onStdout?: () => void): Output {
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d) => {
    out += d;
    onStdout?.();
  });
  proc.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | string>((resolve) => proc.once(until, (code, signal) => resolve(code ?? signal ?? -1)));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

export interface Child extends Output {
  /** Resolves when a line of stdout satisfies `test`. */
  line: (test: (line: string) => boolean, timeoutMs?: number) => Promise<string>;
}

/** Runs `spec/fixtures/<name>` with node; args are passed through. */
export function runFixture(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [join(FIXTURES, name), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const listeners = new Set<() => void>();
  const output = collectOutput(proc, 'exit', () => {
    for (const l of listeners) l();
  });
  const line = (test: (line: string) => boolean, timeoutMs = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = output.stdout().split('\n').find(test);
        if (found !== undefined) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no matching line from ${name} within ${timeoutMs} ms; stdout:\n${output.stdout()}\nstderr:\n${output.stderr()}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  return { ...output, line };
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

/** Rejects if `promise` does not settle within `ms` (bounds hangs; not a speed assertion). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Every file below `dir`, as paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** mulberry32, seeded: a failing run's random choices can be replayed (shared with the fixture processes). */
export { seededRandom } from './fixtures/seeded-random.mjs';

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
