/**
 * The consuming loop of `consume` and `tail`: workers that pop and handle messages until stopped,
 * with an exact `--max` (a message is only claimed when the count allows it, so none is claimed
 * and then given back) and `--idle` (stop when nothing arrived for a while and nothing runs).
 * While a message is handled its lease is extended (keepingLease, as consume() does).
 */
import { keepingLease } from '../consume.js';
import type { Message } from '../message.js';
import { formatError, type RawQueue } from './common.js';

export interface WorkOptions {
  concurrency: number;
  /** Messages to take at most. */
  max: number | undefined;
  /** Stop when no message arrived for this long and no handler runs. */
  idleMs: number | undefined;
  /** Aborting stops taking messages; running handlers finish. */
  signal: AbortSignal;
}

/** Resolves once every worker stopped and every handler settled; rejects with the first error. */
export async function work(q: RawQueue, options: WorkOptions, handle: (message: Message<Buffer>) => Promise<void>): Promise<void> {
  const halt = new AbortController();
  const signal = AbortSignal.any([options.signal, halt.signal]);
  const leaseMs = q.options.leaseMs;
  let taken = 0;
  let running = 0;
  let failure: unknown = null;

  const worker = async (): Promise<void> => {
    while (!signal.aborted) {
      if (options.max !== undefined && taken >= options.max) return;
      taken++;
      let message: Message<Buffer> | null;
      try {
        message = await q.pop(options.idleMs === undefined ? { signal } : { signal, timeoutMs: options.idleMs });
      } catch (error) {
        taken--;
        if (signal.aborted) return;
        failure ??= error;
        halt.abort();
        return;
      }
      if (message === null) {
        taken--;
        if (running === 0) halt.abort(); // idle: nothing arrived, and nothing runs that could push more
        continue;
      }
      running++;
      const onLeaseError = (error: Error) => process.stderr.write(`${formatError(error, null)} (message ${message.id})\n`);
      try {
        await keepingLease(message, leaseMs, onLeaseError, () => handle(message));
      } catch (error) {
        failure ??= error; // stdout closed, a failed ack: stop taking, let the others finish
        halt.abort();
      } finally {
        running--;
      }
    }
  };

  await Promise.all(Array.from({ length: options.concurrency }, worker));
  if (failure !== null) throw failure;
}
