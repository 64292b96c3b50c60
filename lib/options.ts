import { InvalidNameError, InvalidOptionError } from './errors.js';
import { MAX_ENVELOPE_RECORDS } from './names.js';
import { parsePattern } from './topics.js';

export type Durability = 'fsync' | 'none';
export type CodecName = 'json' | 'raw';
export type Share = 'private' | 'group';

export interface BackoffOptions {
  /** Delay before the first retry. @default 1000 */
  baseMs?: number;
  /** Upper bound of the exponential delay. @default 60000 */
  maxMs?: number;
}

/** Options of `openQueue()`. Every field is optional; defaults are listed on each. */
export interface QueueOptions {
  /**
   * Subscriber group this handle consumes from; created on first use. `null`: a handle that
   * only publishes and manages groups, and creates none. @default 'default'
   */
  group?: string | null;
  /**
   * Topic patterns the group is bound to (AMQP style: `.` separates words, `*` is one word,
   * `#` zero or more). Given, the group's bindings become exactly these; omitted, a new group
   * is bound to `['#']` (every message) and an existing one keeps its bindings.
   * @default the group's bindings, or ['#'] for a new group
   */
  topics?: readonly string[];
  /**
   * What this handle's pushes that match no group become: with `true` they go to the group
   * `unrouted` (created at open), with `false` they are dropped. Either way they are counted
   * in `stats().unrouted`. @default false
   */
  keepUnrouted?: boolean;
  /** How long a claimed message stays invisible to other consumers. @default 30000 */
  leaseMs?: number;
  /** Deliveries before a message moves to the dead letters. @default 5 */
  maxAttempts?: number;
  /** Retry delay of `nack()` without `delayMs`: `baseMs × 2^(attempts−1)`, capped, with jitter. */
  backoff?: BackoffOptions;
  /**
   * `'fsync'`: a resolved push survives power loss (file fdatasync + directory fsync, group-committed).
   * `'none'`: visibility is still atomic and survives process crashes; the OS flushes later.
   * @default 'fsync'
   */
  durability?: Durability;
  /**
   * `true`: the messages of one `pushMany`, and pushes made while this handle's previous write
   * was in flight, share envelope files (up to 128 messages and 1 MiB each): one inode, one
   * fdatasync and one rename for all of them. Consumers still get, ack and nack them one by one.
   * `false`: one file per message, as tools that read the spool's files directly may expect.
   * @default true
   */
  envelopes?: boolean;
  /**
   * How many messages of an envelope one consumer claims at once. The producer publishes an
   * envelope of more as parts of up to this many, each under a name of its own (hard links of
   * one file), so that several consumers share a `pushMany`, and a slow consumer holds at most
   * this many of them. Smaller spreads work wider; each part costs the producer a link.
   * @default 32
   */
  claimBatch?: number;
  /** `'json'`: any JSON value. `'raw'`: string | Uint8Array in, Buffer out. @default 'json' */
  codec?: CodecName;
  /** Largest encoded message accepted by push, and read by consumers. @default 16 MiB */
  maxMessageBytes?: number;
  /** Poll the doorbell instead of using inotify: for network file systems. @default false */
  usePolling?: boolean;
  /** Poll interval when `usePolling` is on. @default 100 */
  pollIntervalMs?: number;
  /** How many due message names a consumer keeps in memory (read-ahead). @default 10000 */
  prefetch?: number;
  /** Period of the reconciliation scan that covers lost watch events. @default 2000 */
  reconcileMs?: number;
  /**
   * Who may use a spool this call creates besides its owner: `'private'` (directories 0700,
   * files 0600) or `'group'` (2770 and 0660: the owner's group too). An existing spool keeps
   * the sharing it was created with; giving another value is an error.
   * @default the spool's, or 'private' for a new one
   */
  share?: Share;
  /**
   * Refuse a spool owned by another user (root excepted) or writable by others, as ssh's
   * StrictModes does: whoever can write into a spool can plant or remove messages.
   * @default true
   */
  strictModes?: boolean;
}

export interface ResolvedOptions {
  readonly group: string | null;
  readonly topics: readonly string[] | undefined;
  readonly keepUnrouted: boolean;
  readonly leaseMs: number;
  readonly maxAttempts: number;
  readonly backoff: Readonly<Required<BackoffOptions>>;
  readonly durability: Durability;
  readonly envelopes: boolean;
  readonly claimBatch: number;
  readonly codec: CodecName;
  readonly maxMessageBytes: number;
  readonly usePolling: boolean;
  readonly pollIntervalMs: number;
  readonly prefetch: number;
  readonly reconcileMs: number;
  readonly share: Share | undefined;
  readonly strictModes: boolean;
}

export const DEFAULTS: ResolvedOptions = Object.freeze({
  group: 'default',
  topics: undefined,
  keepUnrouted: false,
  leaseMs: 30_000,
  maxAttempts: 5,
  backoff: Object.freeze({ baseMs: 1_000, maxMs: 60_000 }),
  durability: 'fsync',
  envelopes: true,
  claimBatch: 32,
  codec: 'json',
  maxMessageBytes: 16 * 1024 * 1024,
  usePolling: false,
  pollIntervalMs: 100,
  prefetch: 10_000,
  reconcileMs: 2_000,
  share: undefined,
  strictModes: true,
});

/** The hard ceiling of `maxMessageBytes`: lengths are stored as 32-bit integers. */
export const MAX_MESSAGE_BYTES_LIMIT = 2 ** 31 - 1;
/** The longest setTimeout delay Node honours; longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function describe(value: unknown): string {
  let shown: string;
  try {
    shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    shown = Object.prototype.toString.call(value);
  }
  return `${shown} (${value === null ? 'null' : typeof value})`;
}

export function invalid(name: string, expected: string, value: unknown): InvalidOptionError {
  return new InvalidOptionError(`Invalid option \`${name}\`: expected ${expected}, got ${describe(value)}`);
}

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function checkEnum<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw invalid(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

function checkKnownKeys(what: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new InvalidOptionError(`Unknown ${what} \`${key}\`; the known ones are: ${known.join(', ')}`);
    }
  }
}

export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Group names become directory names: no separators, no leading dot, at most 100 characters. */
export function checkGroupName(name: unknown): string {
  if (typeof name !== 'string' || !GROUP_NAME.test(name)) {
    throw new InvalidNameError(
      `Invalid group name ${describe(name)}: use 1 to 100 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit`,
    );
  }
  return name;
}

/** The group that keeps the pushes no group matched (see `keepUnrouted`): never bound to a pattern. */
export const UNROUTED_GROUP = 'unrouted';

/** Validates a list of topic patterns; returns a frozen copy without duplicates. */
export function checkPatterns(name: string, patterns: unknown): readonly string[] {
  if (!Array.isArray(patterns)) throw invalid(name, 'an array of topic patterns such as ["orders.*"]', patterns);
  for (const pattern of patterns) parsePattern(pattern);
  return Object.freeze([...new Set(patterns as string[])]);
}

/** Validates the caller's options and merges them over the defaults into a frozen object. */
export function resolveOptions(options: QueueOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid('options', 'an object', options);
  }
  checkKnownKeys('option', options, Object.keys(DEFAULTS));
  const o = { ...DEFAULTS, ...stripUndefined(options) };
  const backoffIn = options.backoff ?? {};
  if (typeof backoffIn !== 'object' || backoffIn === null) {
    throw invalid('backoff', 'an object { baseMs, maxMs }', backoffIn);
  }
  checkKnownKeys('backoff option', backoffIn, ['baseMs', 'maxMs']);
  const backoff = { ...DEFAULTS.backoff, ...stripUndefined(backoffIn) };
  checkInteger('backoff.baseMs', backoff.baseMs, 0, MAX_TIMER_MS);
  checkInteger('backoff.maxMs', backoff.maxMs, backoff.baseMs, MAX_TIMER_MS);
  if (typeof o.usePolling !== 'boolean') throw invalid('usePolling', 'a boolean', o.usePolling);
  if (typeof o.strictModes !== 'boolean') throw invalid('strictModes', 'a boolean', o.strictModes);
  if (typeof o.keepUnrouted !== 'boolean') throw invalid('keepUnrouted', 'a boolean', o.keepUnrouted);
  if (typeof o.envelopes !== 'boolean') throw invalid('envelopes', 'a boolean', o.envelopes);
  const group = o.group === null ? null : checkGroupName(o.group);
  const topics = o.topics === undefined ? undefined : checkPatterns('topics', o.topics);
  if (topics !== undefined && group === null) {
    throw new InvalidOptionError('Invalid option `topics`: a handle with group: null has no group to bind; name a group');
  }
  if (topics !== undefined && group === UNROUTED_GROUP) {
    throw new InvalidOptionError(
      `Invalid option \`topics\`: the group '${UNROUTED_GROUP}' receives only what no other group matched; it cannot be bound`,
    );
  }
  return Object.freeze({
    group,
    topics,
    keepUnrouted: o.keepUnrouted,
    leaseMs: checkInteger('leaseMs', o.leaseMs, 10, MAX_TIMER_MS),
    maxAttempts: checkInteger('maxAttempts', o.maxAttempts, 1, 1000),
    backoff: Object.freeze(backoff),
    durability: checkEnum('durability', o.durability, ['fsync', 'none']),
    envelopes: o.envelopes,
    claimBatch: checkInteger('claimBatch', o.claimBatch, 1, MAX_ENVELOPE_RECORDS),
    codec: checkEnum('codec', o.codec, ['json', 'raw']),
    maxMessageBytes: checkInteger('maxMessageBytes', o.maxMessageBytes, 1, MAX_MESSAGE_BYTES_LIMIT),
    usePolling: o.usePolling,
    pollIntervalMs: checkInteger('pollIntervalMs', o.pollIntervalMs, 1, 60_000),
    prefetch: checkInteger('prefetch', o.prefetch, 1, 1_000_000),
    reconcileMs: checkInteger('reconcileMs', o.reconcileMs, 10, MAX_TIMER_MS),
    share: o.share === undefined ? undefined : checkEnum('share', o.share, ['private', 'group']),
    strictModes: o.strictModes,
  });
}

/** `{ leaseMs: undefined }` means "the default", as it does for every JS API. */
function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
