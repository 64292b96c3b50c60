import { crc32 } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { backoffDelay } from '../lib/backoff.js';
import { CorruptFileError, decodeFile, decodeRecords, encodeRecords, HEADER_BYTES, type MessageAttributes } from '../lib/message-file.js';
import type { CodecName } from '../lib/options.js';

/** One message file, as a publisher encodes it. */
function encodeFile(codec: CodecName, attributes: MessageAttributes, payload: Buffer): Buffer {
  const attrs = JSON.stringify(attributes);
  return encodeRecords([{ codec, attrs, attrsBytes: Buffer.byteLength(attrs), payload }]).file;
}

import {
  formatBucket,
  formatLeased,
  formatReady,
  IdGenerator,
  isReadyName,
  parseBucket,
  parseLeased,
  parseReady,
  timeHex,
  unsettled,
  visibleBy,
} from '../lib/names.js';

describe('names', () => {
  it('round-trip, and sort in delivery order', () => {
    const ids = new IdGenerator();
    const one = { count: 1, settled: 0n };
    const a = { priority: 0, visibleAt: 1_700_000_000_123, id: ids.next(), attempt: 1, ...one };
    const b = { priority: 0, visibleAt: 1_700_000_000_123, id: ids.next(), attempt: 3, ...one };
    // an envelope of 128 records, the first and the last settled
    const e = { priority: 0, visibleAt: 1_700_000_000_123, id: ids.next(), attempt: 1, count: 128, settled: (1n << 127n) | 1n };
    const c = { priority: 0, visibleAt: 1_700_000_000_124, id: ids.next(), attempt: 1, ...one };
    const d = { priority: 9, visibleAt: 1_600_000_000_000, id: ids.next(), attempt: 1, ...one };
    for (const n of [a, b, e, c, d]) {
      expect(parseReady(formatReady(n))).toEqual(n);
      expect(isReadyName(formatReady(n))).toBe(true);
      // visible at its own time and after, not a ms before
      for (const [t, visible] of [
        [n.visibleAt - 1, false],
        [n.visibleAt, true],
        [n.visibleAt + 1, true],
        [n.visibleAt + 2 ** 40, true],
      ] as const) {
        expect(visibleBy(formatReady(n), timeHex(t)), `${formatReady(n)} at ${t}`).toBe(visible);
      }
    }
    expect(unsettled(e)).toBe(126);
    const shuffled = [d, c, e, b, a].map(formatReady).sort();
    expect(shuffled).toEqual([a, b, e, c, d].map(formatReady));
    const leased = { deadline: 1_700_000_030_000, ready: formatReady(a), token: '0123456789abcdef' };
    expect(parseLeased(formatLeased(leased))).toEqual(leased);
    expect(parseBucket(formatBucket(4, 1_700_000_000_123, 10_000))).toEqual({ priority: 4, bucket: 170_000_000 });
  });

  it('leftover links: a name whose token another name has, holding a subset of its records', async () => {
    const { leftoverNames, leftoversOf } = await import('../lib/leases.js');
    const ready = (settled: bigint) => formatReady({ priority: 4, visibleAt: 1_000, id: 'a'.repeat(24), attempt: 1, count: 4, settled });
    const name = (deadline: number, settled: bigint, token = '0123456789abcdef') =>
      formatLeased({ deadline, ready: ready(settled), token });
    const holder = name(5, 0b0001n);
    const leftover = name(5, 0b0011n); // one more record settled: a subset
    const later = name(9, 0b0111n); // a later deadline (a reaper's claim keeps the token)
    const stranger = name(5, 0b0011n, 'fedcba9876543210'); // another token
    const incomparable = name(5, 0b0110n);
    const single = formatLeased({
      deadline: 5,
      ready: formatReady({ priority: 4, visibleAt: 1, id: 'b'.repeat(24), attempt: 1 }),
      token: '0123456789abcdef',
    });
    expect([...leftoverNames([holder, leftover, later, stranger, single])].sort()).toEqual([leftover, later].sort());
    expect(leftoversOf([holder, leftover, later, stranger, single], holder).sort()).toEqual([leftover, later].sort());
    expect(leftoversOf([holder, leftover], leftover)).toEqual([]);
    // Neither holds the other's records: neither is a leftover of the other.
    expect([...leftoverNames([leftover, incomparable])]).toEqual([]);
    // The same records under two names: one of them counts.
    expect([...leftoverNames([holder, name(7, 0b0001n)])]).toHaveLength(1);
  });

  it('reject anything else', () => {
    for (const bad of [
      '',
      '.x',
      '4-abc',
      'garbage name!',
      `${formatReady({ priority: 1, visibleAt: 1, id: 'a'.repeat(24), attempt: 1 })}x`,
      // envelopes: fewer than 2 or more than 128 records, a settled bit past the last record
      `${formatReady({ priority: 1, visibleAt: 1, id: 'a'.repeat(24), attempt: 1 })}=01-${'0'.repeat(32)}`,
      `${formatReady({ priority: 1, visibleAt: 1, id: 'a'.repeat(24), attempt: 1 })}=81-${'0'.repeat(32)}`,
      `${formatReady({ priority: 1, visibleAt: 1, id: 'a'.repeat(24), attempt: 1 })}=02-${'0'.repeat(31)}4`,
    ]) {
      expect(parseReady(bad)).toBeNull();
      expect(isReadyName(bad)).toBe(false);
      expect(parseLeased(bad)).toBeNull();
    }
    expect(parseBucket('4-xyz')).toBeNull();
  });

  it("a producer's clock absorbs small backward steps and follows large ones", () => {
    const ids = new IdGenerator();
    const spy = vi.spyOn(Date, 'now');
    try {
      spy.mockReturnValue(10_000_000);
      expect(ids.now()).toBe(10_000_000);
      spy.mockReturnValue(10_000_000 - 500); // NTP nudge: keep push order
      expect(ids.now()).toBe(10_000_000);
      spy.mockReturnValue(10_000_000 - 3_600_000); // the clock was an hour ahead, now fixed
      expect(ids.now()).toBe(10_000_000 - 3_600_000); // not an hour of delay for the next pushes
    } finally {
      spy.mockRestore();
    }
  });

  it('ids of one producer increase, and its clock never goes back', () => {
    const ids = new IdGenerator();
    const list = Array.from({ length: 100 }, () => ids.next());
    expect([...list].sort()).toEqual(list);
    let last = 0;
    for (let i = 0; i < 100; i++) {
      const now = ids.now();
      expect(now).toBeGreaterThanOrEqual(last);
      last = now;
    }
  });
});

describe('message file', () => {
  const attrs = { id: 'a'.repeat(24), enqueuedAt: 1, headers: { k: 'v' } };

  it('round-trips', () => {
    const file = encodeFile('json', attrs, Buffer.from('{"x":1}'));
    expect(file.readUInt32LE(16)).toBe(crc32(file.subarray(HEADER_BYTES), crc32(file.subarray(0, 16))));
    const decoded = decodeFile(file);
    expect(decoded.attributes).toEqual(attrs);
    expect(decoded.payload.toString()).toBe('{"x":1}');
    expect(decoded.codec).toBe('json');
    expect(decodeFile(encodeFile('raw', attrs, Buffer.alloc(0))).codec).toBe('raw');
  });

  it('detects every truncation and every flipped bit', () => {
    const file = encodeFile('raw', attrs, Buffer.from('payload bytes'));
    for (let len = 0; len < file.length; len++) expect(() => decodeFile(file.subarray(0, len))).toThrow(CorruptFileError);
    for (let bit = 0; bit < file.length * 8; bit++) {
      const copy = Buffer.from(file);
      copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(() => decodeFile(copy), `bit ${bit}`).toThrow(CorruptFileError);
    }
  });
});

describe('envelope', () => {
  const three = () =>
    encodeRecords(
      ['a', 'b', 'c'].map((x, i) => {
        const attrs = JSON.stringify({ id: String(i).repeat(24), enqueuedAt: 1 });
        return { codec: 'raw' as const, attrs, attrsBytes: attrs.length, payload: Buffer.from(x) };
      }),
    );

  it('a name reads only the records it holds: damage in the ones it has settled after them is not its concern', () => {
    const { file, offsets } = three();
    const cut = file.subarray(0, offsets[2]); // record 2 gone
    expect(() => decodeRecords(cut, 3)).toThrow(CorruptFileError);
    expect(() => decodeRecords(cut, 3, 0b001n), "record 2 is this name's: the cut is").toThrow(CorruptFileError);
    expect(decodeRecords(cut, 3, 0b100n).map((r) => r?.payload.toString() ?? null)).toEqual(['a', 'b', null]);
    // Garbage after the last record: a name that has settled records reads past it.
    const tail = Buffer.concat([file, Buffer.from('junk')]);
    expect(() => decodeRecords(tail, 3)).toThrow(CorruptFileError);
    expect(decodeRecords(tail, 3, 0b110n).map((r) => r?.payload.toString() ?? null)).toEqual(['a', null, null]);
    // Bytes after all the records are reported by a name that holds them all, not by a part.
    expect(decodeRecords(tail, 3, 0b001n).map((r) => r?.payload.toString() ?? null)).toEqual([null, 'b', 'c']);
    // A settled record before the ones held is skipped by its length, its bytes unchecked.
    const flipped = Buffer.from(file);
    flipped.writeUInt8((flipped.readUInt8((offsets[1] as number) - 1) ^ 1) & 0xff, (offsets[1] as number) - 1);
    expect(() => decodeRecords(flipped, 3)).toThrow(CorruptFileError);
    expect(decodeRecords(flipped, 3, 0b101n).map((r) => r?.payload.toString() ?? null)).toEqual([null, 'b', null]);
  });
});

describe('backoff', () => {
  const backoff = { baseMs: 1_000, maxMs: 60_000 };
  it('doubles per attempt within [delay/2, delay], capped at maxMs', () => {
    expect(backoffDelay(1, backoff, () => 0)).toBe(500);
    expect(backoffDelay(1, backoff, () => 1)).toBe(1_000);
    expect(backoffDelay(3, backoff, () => 1)).toBe(4_000);
    expect(backoffDelay(20, backoff, () => 1)).toBe(60_000);
    expect(backoffDelay(20, backoff, () => 0)).toBe(30_000);
  });
});
