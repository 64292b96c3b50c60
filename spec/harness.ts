/** The fixture processes and queue handles of a spec file, reclaimed after each of its tests. */
import { afterEach } from 'vitest';
import { openQueue, type Queue, type QueueOptions } from '../lib/index.js';
import { type Child, cleanup, runFixture } from './helpers.js';

export interface Harness {
  /** runFixture, and the child is killed (SIGKILL) after the test if it still runs. */
  spawn: (name: string, args: string[]) => Child;
  /** openQueue with `defaults` under `options`, and the handle is closed after the test. */
  open: (spool: string, options?: QueueOptions) => Promise<Queue>;
}

/**
 * Call once at the top of a spec file. After each test it kills the children still running and
 * waits for them, then closes the queues, then removes the temporary directories (`cleanup()`).
 */
export function useHarness(defaults: QueueOptions = {}): Harness {
  const children: Child[] = [];
  const queues: Queue[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
      await child.exited;
    }
    await Promise.all(queues.splice(0).map((q) => q.close()));
    await cleanup();
  });
  return {
    spawn(name, args) {
      const child = runFixture(name, args);
      children.push(child);
      return child;
    },
    async open(spool, options = {}) {
      const q = await openQueue(spool, { ...defaults, ...options });
      queues.push(q);
      return q;
    },
  };
}
