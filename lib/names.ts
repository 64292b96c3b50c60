/**
 * The file names of the spool protocol. Everything a consumer needs to schedule a message
 * (priority, visible-at time, id, attempt) is in its name, so picking the next one needs no
 * stat or read, and a plain byte-wise sort of names is the delivery order.
 *
 *   bucket directory   <P>-<bucket:10 hex>                 bucket = floor(visibleAt / bucketMs)
 *   ready name         <P>-<visibleAt:12 hex>-<id:24 hex>-<attempt:4 hex>[=<count:2 hex>-<settled:32 hex>]
 *   leased name        <deadline:12 hex>-<ready name>~<token:16 hex>
 *
 * The suffix marks an envelope: a file of `count` (2..128) messages written together (see
 * message-file.ts). `settled` is a bitmap of the records already acked or nacked (bit i =
 * record i): it moves with the file in every rename, so when a lease is lost the reaper splits
 * out only the others. `id` is then the id of its first record.
 *
 * Sorting bucket directories gives (priority, time) order; sorting names inside a bucket gives
 * (priority, visibleAt, producer, sequence) order. Sorting leased names gives expiry order.
 */
import { randomBytes } from 'node:crypto';

export const MAX_PRIORITY = 9;
export const DEFAULT_PRIORITY = 4;

const READY = /^([0-9])-([0-9a-f]{12})-([0-9a-f]{24})-([0-9a-f]{4})(?:=([0-9a-f]{2})-([0-9a-f]{32}))?$/;
const LEASED = /^([0-9a-f]{12})-([0-9]-[0-9a-f]{12}-[0-9a-f]{24}-[0-9a-f]{4}(?:=[0-9a-f]{2}-[0-9a-f]{32})?)~([0-9a-f]{16})$/;
/** The most records one envelope holds: its settled bitmap is 128 bits. */
export const MAX_ENVELOPE_RECORDS = 128;
const BUCKET = /^([0-9])-([0-9a-f]{10})$/;
export const MAX_ATTEMPT = 0xffff;
/** Backward clock steps up to this are absorbed by a producer's clock (see IdGenerator.now). */
const MAX_CLOCK_STEP_BACK_MS = 1_000;

export interface ReadyName {
  readonly priority: number;
  readonly visibleAt: number;
  readonly id: string;
  readonly attempt: number;
  /** Messages in the file: 1, or 2..128 for an envelope. */
  readonly count: number;
  /** Bit i set: record i of an envelope was settled (acked or nacked). Always 0n for one message. */
  readonly settled: bigint;
}

export interface LeasedName {
  readonly deadline: number;
  readonly ready: string;
  readonly token: string;
}

export interface BucketName {
  readonly priority: number;
  readonly bucket: number;
}

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/** The name of one message (count 1) or of an envelope; `count` and `settled` default to one message. */
export function formatReady(n: Omit<ReadyName, 'count' | 'settled'> & Partial<Pick<ReadyName, 'count' | 'settled'>>): string {
  const name = `${n.priority}-${hex(n.visibleAt, 12)}-${n.id}-${hex(Math.min(n.attempt, MAX_ATTEMPT), 4)}`;
  const count = n.count ?? 1;
  return count === 1 ? name : `${name}=${hex(count, 2)}-${(n.settled ?? 0n).toString(16).padStart(32, '0')}`;
}

export function parseReady(name: string): ReadyName | null {
  const m = READY.exec(name);
  if (!m) return null;
  const count = m[5] === undefined ? 1 : Number.parseInt(m[5], 16);
  const settled = m[6] === undefined ? 0n : BigInt(`0x${m[6]}`);
  // An envelope holds 2..128 records, and only records it holds can be settled.
  if (m[5] !== undefined && (count < 2 || count > MAX_ENVELOPE_RECORDS || settled >> BigInt(count) !== 0n)) return null;
  return {
    priority: Number(m[1]),
    visibleAt: Number.parseInt(m[2] as string, 16),
    id: m[3] as string,
    attempt: Number.parseInt(m[4] as string, 16),
    count,
    settled,
  };
}

/** The length of a ready name without the envelope suffix. */
const PLAIN_READY_LENGTH = 44;

/**
 * Whether `name` is a valid ready name: parseReady(name) !== null, without allocating for the
 * common case (a scan tests every name of a bucket, hundreds of thousands in a large backlog).
 */
export function isReadyName(name: string): boolean {
  return READY.test(name) && (name.length === PLAIN_READY_LENGTH || parseReady(name) !== null);
}

/**
 * Whether the ready name `name` (valid) is visible at the time whose 12-digit hex is `timeHex`:
 * its fixed-width visibleAt field compared as text, without parsing it.
 */
export function visibleBy(name: string, timeHex: string): boolean {
  for (let i = 0; i < 12; i++) {
    const a = name.charCodeAt(i + 2);
    const b = timeHex.charCodeAt(i);
    if (a !== b) return a < b;
  }
  return true;
}

/** A time as the 12 hex digits of the visibleAt field of a ready name. */
export function timeHex(ms: number): string {
  return hex(ms, 12);
}

/**
 * recordBit and allRecords of every index an envelope has, made once: a BigInt shift per call
 * was 5 % of a cross-process drain's CPU profile (2026-11-27); a lookup costs less (with two
 * other changes, bench/README.md, results of 20:24).
 */
const BITS = Array.from({ length: MAX_ENVELOPE_RECORDS + 1 }, (_, i) => 1n << BigInt(i));
const ALL = BITS.map((bit) => bit - 1n);

/** The bit of record `index` in an envelope's settled bitmap. */
export function recordBit(index: number): bigint {
  return BITS[index] ?? 1n << BigInt(index);
}

/** The settled bitmap of an envelope of `count` records once all are settled. */
export function allRecords(count: number): bigint {
  return ALL[count] ?? (1n << BigInt(count)) - 1n;
}

/** The bits of records `from` to `to - 1`: one part of an envelope. */
export function recordRange(from: number, to: number): bigint {
  return allRecords(to) & ~allRecords(from);
}

/** How many messages of a ready name are still to be delivered. */
export function unsettled(n: ReadyName): number {
  let left = n.count;
  for (let bits = n.settled; bits !== 0n; bits &= bits - 1n) left--;
  return left;
}

export function formatLeased(n: LeasedName): string {
  return `${hex(n.deadline, 12)}-${n.ready}~${n.token}`;
}

export function parseLeased(name: string): LeasedName | null {
  const m = LEASED.exec(name);
  if (!m) return null;
  return { deadline: Number.parseInt(m[1] as string, 16), ready: m[2] as string, token: m[3] as string };
}

export function formatBucket(priority: number, visibleAt: number, bucketMs: number): string {
  return `${priority}-${hex(Math.floor(visibleAt / bucketMs), 10)}`;
}

export function parseBucket(name: string): BucketName | null {
  const m = BUCKET.exec(name);
  if (!m) return null;
  return { priority: Number(m[1]), bucket: Number.parseInt(m[2] as string, 16) };
}

/** A fencing token: unique per claim, so only the claimer can ack, extend or nack it. */
export function newToken(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Message ids: 48 random bits per producer handle, then a 48-bit sequence. Ids from one
 * producer sort in push order; collisions between producers are caught by O_EXCL and link().
 */
export class IdGenerator {
  #prefix = randomBytes(6).toString('hex');
  #seq = 0;
  #lastNow = 0;

  next(): string {
    return `${this.#prefix}${hex(this.#seq++, 12)}`;
  }

  /**
   * Wall time that does not go backwards within this producer by small steps (NTP slewing, or
   * two calls in one ms), so its names keep push order. A large backward step of the clock is
   * taken as it is: holding the old time would delay every later push by the size of the step.
   */
  now(): number {
    const now = Date.now();
    this.#lastNow = now < this.#lastNow - MAX_CLOCK_STEP_BACK_MS ? now : Math.max(this.#lastNow, now);
    return this.#lastNow;
  }
}
