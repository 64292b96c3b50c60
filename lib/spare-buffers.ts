/**
 * Buffers for encoding large pushes, reused from one push to the next.
 *
 * On these machines a fresh 64 KiB buffer, filled, cost 14–21 µs against ~2 µs for a reused one:
 * the allocator takes new pages from the kernel, and the VM's first touch of each is dear.
 * Reusing them took 5–7 % off a fast sequential 64 KiB push (bench/README.md, Results of
 * 2026-11-27 18:10, point 2). Node already pools buffers under `Buffer.poolSize / 2`; this pools
 * the larger ones, up to SYNC_IO_MAX_BYTES.
 *
 * A buffer is lent by `alloc` and comes back by `release`, which the publisher calls once the
 * round that wrote it is over: nothing reads it after that (its writes, links and copies are
 * done, every one awaited). `release` ignores any buffer `alloc` did not lend, and any it has
 * had back, so a buffer of Node's shared pool is never lent out, nor one memory lent twice.
 */
import { SYNC_IO_MAX_BYTES } from './durable-fs.js';

/** Smaller buffers come from Node's own pool, which is already cheap. */
const MIN_BYTES = Buffer.poolSize >>> 1;
/**
 * At most this many spare buffers are kept (≤ 4 MiB): enough for the pushes of one round, which
 * are encoded before it is written. (With envelopes on, a round of several pushes is written from
 * one fresh concatenation; their own buffers still come back.)
 */
const MAX_SPARES = 16;
/** Buffers are made in multiples of a page, so messages of nearly the same size share them. */
const PAGE = 4096;

export class SpareBuffers {
  /** Whole buffers, free to lend. */
  #free: Buffer[] = [];
  /**
   * Every buffer lent and not given back, as `alloc` returned it: a second release of one, once
   * its memory is lent again as another, is then ignored.
   */
  #lent = new WeakSet<Buffer>();

  /** A buffer of `size` bytes, not zeroed: the start of a spare one if one fits, else a new one. */
  readonly alloc = (size: number): Buffer => {
    if (size < MIN_BYTES || size > SYNC_IO_MAX_BYTES) return Buffer.allocUnsafe(size);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const length = (this.#free[i] as Buffer).length;
      if (length >= size && (best < 0 || length < (this.#free[best] as Buffer).length)) best = i;
    }
    const whole = best >= 0 ? (this.#free.splice(best, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(Math.ceil(size / PAGE) * PAGE);
    const lent = whole.subarray(0, size);
    this.#lent.add(lent);
    return lent;
  };

  /**
   * Gives back a buffer from `alloc` once nothing will read it again; any other buffer is left to
   * the GC. When the pool is full, the buffer takes the place of a smaller spare, if any: a burst
   * of small pushes must not keep the large ones out for good.
   */
  release(buffer: Buffer): void {
    if (!this.#lent.delete(buffer)) return;
    const whole = Buffer.from(buffer.buffer);
    if (this.#free.length < MAX_SPARES) {
      this.#free.push(whole);
      return;
    }
    let smallest = 0;
    for (let i = 1; i < this.#free.length; i++) {
      if ((this.#free[i] as Buffer).length < (this.#free[smallest] as Buffer).length) smallest = i;
    }
    if ((this.#free[smallest] as Buffer).length < whole.length) this.#free[smallest] = whole;
  }
}
