/**
 * The file names of the spool protocol. Everything a consumer needs to schedule a message
 * (priority, visible-at time, id, attempt) is in its name, so picking the next one needs no
 * stat or read, and a plain byte-wise sort of names is the delivery order.
 *
 *   bucket directory   <P>-<bucket:10 hex>                 bucket = floor(visibleAt / bucketMs)
 *   ready name         <P>-<visibleAt:12 hex>-<id:24 hex>-<attempt:4 hex>
 *   leased name        <deadline:12 hex>-<ready name>~<token:16 hex>
 *
 * Sorting bucket directories gives (priority, time) order; sorting names inside a bucket gives
 * (priority, visibleAt, producer, sequence) order. Sorting leased names gives expiry order.
 */
import { randomBytes } from 'node:crypto';

export const MAX_PRIORITY = 9;
export const DEFAULT_PRIORITY = 4;

const READY = /^([0-9])-([0-9a-f]{12})-([0-9a-f]{24})-([0-9a-f]{4})$/;
const LEASED = /^([0-9a-f]{12})-([0-9]-[0-9a-f]{12}-[0-9a-f]{24}-[0-9a-f]{4})~([0-9a-f]{16})$/;
const BUCKET = /^([0-9])-([0-9a-f]{10})$/;
export const MAX_ATTEMPT = 0xffff;
/** Backward clock steps up to this are absorbed by a producer's clock (see IdGenerator.now). */
const MAX_CLOCK_STEP_BACK_MS = 1_000;

export interface ReadyName {
  readonly priority: number;
  readonly visibleAt: number;
  readonly id: string;
  readonly attempt: number;
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

export function formatReady(n: ReadyName): string {
  return `${n.priority}-${hex(n.visibleAt, 12)}-${n.id}-${hex(Math.min(n.attempt, MAX_ATTEMPT), 4)}`;
}

export function parseReady(name: string): ReadyName | null {
  const m = READY.exec(name);
  if (!m) return null;
  return {
    priority: Number(m[1]),
    visibleAt: Number.parseInt(m[2] as string, 16),
    id: m[3] as string,
    attempt: Number.parseInt(m[4] as string, 16),
  };
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
