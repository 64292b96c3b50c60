/** spoolq: a durable message queue whose broker is a directory. */

export { type ConsumeOptions, Consumer, type Handler } from './consume.js';
export type { DeadCode, DeadLetter } from './dead-letters.js';
export {
  ClosedError,
  DurabilityError,
  InvalidNameError,
  InvalidOptionError,
  LeaseLostError,
  MessageEncodeError,
  MessageSettledError,
  MessageTooLargeError,
  PublishError,
  SpoolFormatError,
  SpoolPathError,
  SpoolqError,
  SpoolUnsafeError,
  StorageError,
} from './errors.js';
export { Message, type NackOptions } from './message.js';
export type { BackoffOptions, CodecName, Durability, QueueOptions, ResolvedOptions, Share } from './options.js';
export type { PushOptions } from './publisher.js';
export { type MessagesOptions, openQueue, Queue, type QueueStats } from './queue.js';
export type { PopOptions } from './receiver.js';
