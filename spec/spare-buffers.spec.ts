/**
 * Spare buffers (spare-buffers.ts): large pushes are encoded into buffers reused from one round
 * to the next. What must hold:
 *   - a buffer is never lent twice at once, and only buffers it lent come back to the pool;
 *   - end to end, pushes that are encoded while earlier rounds are still being written, of many
 *     sizes and distinct bytes, alone and in pushMany, are all delivered intact: a buffer reused
 *     before its round was written would deliver another message's bytes, or fail its checksum.
 * The copies made where there are no hard links, which read the buffer after the write, are
 * checked in no-hardlinks.spec.ts (a FUSE mount).
 */
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { SYNC_IO_MAX_BYTES } from '../lib/durable-fs.js';
import { openQueue } from '../lib/index.js';
import { SpareBuffers } from '../lib/spare-buffers.js';
import { cleanup, spoolPath } from './helpers.js';

afterEach(cleanup);

/** Whether two buffers share any byte of memory. */
const overlap = (a: Buffer, b: Buffer): boolean =>
  a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;

describe('SpareBuffers', () => {
  it('lends a buffer given back again, never one that is still lent', () => {
    const spares = new SpareBuffers();
    const a = spares.alloc(65_626);
    const b = spares.alloc(65_626);
    expect(a.length).toBe(65_626);
    expect(overlap(a, b)).toBe(false);
    spares.release(a);
    const c = spares.alloc(65_000); // fits in a's page-rounded memory
    expect(overlap(c, a)).toBe(true);
    expect(c.length).toBe(65_000);
    expect(overlap(spares.alloc(65_000), c)).toBe(false); // a's memory is lent again, as c
    spares.release(a); // a second release of that memory, while c holds it: ignored
    expect(overlap(spares.alloc(65_000), c)).toBe(false);
  });

  it('takes the smallest spare that fits', () => {
    const spares = new SpareBuffers();
    const big = spares.alloc(200_000);
    const small = spares.alloc(20_000);
    spares.release(big);
    spares.release(small);
    expect(overlap(spares.alloc(10_000), small)).toBe(true);
    expect(overlap(spares.alloc(10_000), big)).toBe(true);
  });

  it("keeps out small and very large buffers, and buffers it did not lend (Node's shared pool)", () => {
    const spares = new SpareBuffers();
    const small = spares.alloc(100); // from Node's shared pool: lending it out again would be a disaster
    const huge = spares.alloc(SYNC_IO_MAX_BYTES + 1);
    const foreign = Buffer.allocUnsafeSlow(65_536);
    for (const buffer of [small, huge, foreign]) spares.release(buffer);
    for (const size of [100, 4096, 8192, 65_536, SYNC_IO_MAX_BYTES + 1]) {
      const lent = spares.alloc(size);
      for (const kept of [small, huge, foreign]) expect(overlap(lent, kept)).toBe(false);
    }
  });

  it('when full, a larger buffer given back takes the place of a smaller spare', () => {
    const spares = new SpareBuffers();
    const small = Array.from({ length: 16 }, () => spares.alloc(5_000));
    const large = spares.alloc(65_536);
    for (const buffer of [...small, large]) spares.release(buffer);
    expect(overlap(spares.alloc(65_536), large)).toBe(true);
  });

  it('keeps at most 16 spares', () => {
    const spares = new SpareBuffers();
    const lent = Array.from({ length: 20 }, () => spares.alloc(50_000));
    for (const buffer of lent) spares.release(buffer);
    const again = Array.from({ length: 20 }, () => spares.alloc(50_000));
    const reused = again.filter((b) => lent.some((l) => overlap(l, b)));
    expect(reused).toHaveLength(16);
  });
});

describe('large pushes, encoded into reused buffers', () => {
  it('are all delivered intact when pushed while earlier rounds are being written', async () => {
    for (const durability of ['none', 'fsync'] as const) {
      const q = await openQueue<Buffer>(await spoolPath(), { durability, codec: 'raw' });
      const sent = new Map<string, Buffer>();
      const pushes: Array<Promise<void>> = [];
      // Sizes from under the pooled range to over it, each message its own random bytes. Pushes
      // are started a few per turn, so new ones are encoded while a round is being written.
      const sizes = [100, 5_000, 17_000, 65_536, 65_000, 120_000, SYNC_IO_MAX_BYTES - 200, SYNC_IO_MAX_BYTES + 10, 9_000, 64];
      for (let i = 0; i < 120; i++) {
        const data = randomBytes(sizes[i % sizes.length] as number);
        pushes.push(q.push(data).then((id) => void sent.set(id, data)));
        if (i % 3 === 2) await nextTurn();
      }
      // pushMany: several messages in one spare buffer, written as an envelope or a view of it.
      for (let i = 0; i < 6; i++) {
        const items = Array.from({ length: 4 }, (_, k) => randomBytes(10_000 + 997 * k + i));
        pushes.push(
          q.pushMany(items).then((ids) => {
            for (const [k, id] of ids.entries()) sent.set(id, items[k] as Buffer);
          }),
        );
        await nextTurn();
      }
      await Promise.all(pushes);
      expect(sent.size).toBe(144);

      let delivered = 0;
      for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
        const expected = sent.get(m.id);
        expect(expected, `message ${m.id} was not sent`).toBeDefined();
        expect(Buffer.compare(m.data, expected as Buffer), `message ${m.id}, ${expected?.length} bytes`).toBe(0);
        await m.ack();
        delivered++;
      }
      expect(delivered).toBe(144);
      expect(await q.deadLetters()).toEqual([]); // nothing quarantined
      await q.close();
    }
  });
});
