/**
 * subscribe(): an in-process subscriber to topic patterns, on a durable group. It is a consumer
 * (resolve acks, throw retries with backoff) plus, for a group other than its queue handle's,
 * that group's own handle, closed with it.
 */
import type { ConsumeOptions, Consumer } from './consume.js';

export interface SubscribeOptions extends ConsumeOptions {
  /**
   * The durable group that keeps this subscription's messages: subscribers of one group share
   * its messages, each group gets its own copy. @default the queue handle's group
   */
  group?: string;
}

export class Subscription {
  /** Resolves once the subscription stopped and its handlers settled. */
  readonly closed: Promise<void>;
  #closing: Promise<void> | null = null;

  /** @internal use Queue.subscribe() */
  constructor(
    /** The group it consumes from. */
    readonly group: string,
    /** The patterns the group is bound to. */
    readonly topics: readonly string[],
    private readonly consumer: Pick<Consumer<unknown>, 'close' | 'closed'>,
    private readonly queue: { close(): Promise<void> } | null,
  ) {
    this.closed = consumer.closed.then(() => this.queue?.close());
  }

  /** Stops taking messages and resolves once the running handlers settled. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.consumer.close().then(() => this.closed);
    return this.#closing;
  }
}
