/** spoolq: a durable message queue whose broker is a directory. */

export { type ConsumeOptions, Consumer, type Handler } from './consume.js';
export type { DeadCode, DeadLetter } from './dead-letters.js';
export { type PurgeDeadOptions, purgeDeadLetters } from './dead-purge.js';
export {
  ClosedError,
  DurabilityError,
  GroupNotFoundError,
  InvalidNameError,
  InvalidOptionError,
  LeaseLostError,
  LockCompromisedError,
  LockTimeoutError,
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
export { type FsckOptions, type FsckProblem, type FsckProblemKind, type FsckReport, fsck } from './fsck.js';
export { type LockHandle, type LockOptions, lock, withLock } from './lock.js';
export { Message, type NackOptions } from './message.js';
export type { BackoffOptions, CodecName, Durability, QueueOptions, ResolvedOptions, Share } from './options.js';
export { type PeekedMessage, type PeekOptions, peek } from './peek.js';
export type { PushOptions } from './publisher.js';
export { type GroupInfo, type MessagesOptions, openQueue, type ProgressOptions, Queue, type QueueStats } from './queue.js';
export type { PopOptions } from './receiver.js';
export { type SubscribeOptions, Subscription } from './subscription.js';
