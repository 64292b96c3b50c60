/**
 * consume(): a pool of `concurrency` workers, each popping a message, running the handler and
 * settling it: resolve → ack, throw → nack with backoff (a dead letter after maxAttempts).
 * While a handler runs its lease is extended every leaseMs/3, so long work keeps its message.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Message } from './message.js';
import { checkInteger, invalid } from './options.js';
import type { PopOptions } from './receiver.js';

export type Handler<T> = (message: Message<T>) => unknown;

export interface ConsumeOptions {
  /** Handlers running at once. @default 1 */
  concurrency?: number;
  /** Aborting it closes the consumer, as close() does. */
  signal?: AbortSignal;
  /**
   * Called with errors that are not the handler's own: a lease lost while the handler ran, an
   * ack or nack that failed, an I/O error while popping. @default process.emitWarning
   */
  onError?: (error: Error, message?: Message<unknown>) => void;
}

export class Consumer<T> {
  readonly #stop = new AbortController();
  readonly #workers: Promise<void>[];
  #closing: Promise<void> | null = null;
  readonly #onError: (error: Error, message?: Message<unknown>) => void;

  /** @internal */
  constructor(
    private readonly pop: (options: PopOptions) => Promise<Message<T> | null>,
    private readonly handler: Handler<T>,
    private readonly leaseMs: number,
    options: ConsumeOptions,
  ) {
    if (typeof handler !== 'function') throw invalid('handler', 'a function', handler);
    const concurrency = checkInteger('concurrency', options.concurrency ?? 1, 1, 10_000);
    if (options.onError !== undefined && typeof options.onError !== 'function') throw invalid('onError', 'a function', options.onError);
    this.#onError = options.onError ?? ((error) => process.emitWarning(error));
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal', 'an AbortSignal', signal);
    if (signal?.aborted) this.#stop.abort();
    const onAbort = () => void this.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#workers = Array.from({ length: concurrency }, () => this.#work());
    this.closed = Promise.all(this.#workers).then(() => signal?.removeEventListener('abort', onAbort));
  }

  /** Resolves once the consumer stopped (closed, aborted, or its queue closed) and its handlers settled. */
  readonly closed: Promise<void>;

  /** Stops taking messages and resolves once every running handler has settled. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      await this.closed;
    })();
    return this.#closing;
  }

  async #work(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let message: Message<T> | null;
      try {
        message = await this.pop({ signal });
      } catch (error) {
        if (signal.aborted) return;
        const code = (error as { code?: string }).code;
        if (code === 'ECLOSED') return;
        this.#onError(error as Error);
        if (code === 'EGROUP_NOT_FOUND') return this.#stop.abort(); // deleted: nothing will ever arrive
        await delay(100); // an I/O error: do not spin
        continue;
      }
      if (message === null) return; // the queue was closed
      await this.#handle(message);
    }
  }

  async #handle(message: Message<T>): Promise<void> {
    let failure: unknown = null;
    try {
      await keepingLease(
        message,
        this.leaseMs,
        (error) => this.#onError(error, message as Message<unknown>),
        async () => {
          await this.handler(message);
        },
      );
    } catch (error) {
      failure = error ?? new Error('handler threw a nullish value');
    }
    if (message.settled) return; // the handler acked or nacked it itself
    try {
      if (failure === null) await message.ack();
      else await message.nack({ reason: `handler threw: ${(failure as Error)?.message ?? String(failure)}` });
    } catch (error) {
      this.#onError(error as Error, message as Message<unknown>);
    }
  }
}

/**
 * Runs `fn` while extending the lease of `message` every leaseMs/3, so long work keeps its
 * message; stops once `fn` settles or the message is settled. A failed extension goes to
 * `onError` (the lease may be lost: an ack would then fail with ELEASE_LOST).
 */
export async function keepingLease<R>(
  message: Message<unknown>,
  leaseMs: number,
  onError: (error: Error) => void,
  fn: () => Promise<R>,
): Promise<R> {
  const keepAlive = setInterval(
    () => {
      if (message.settled) return clearInterval(keepAlive); // acked or nacked already
      message.extend(leaseMs).catch((error) => {
        clearInterval(keepAlive);
        if (!message.settled) onError(error);
      });
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  keepAlive.unref();
  try {
    return await fn();
  } finally {
    clearInterval(keepAlive);
  }
}
