import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue, type Queue } from '../lib/index.js';
import { DEFAULT_BUCKET_MS } from '../lib/layout.js';
import { ReadyIndex, scanReady } from '../lib/ready-index.js';
import { cleanup, spoolPath } from './helpers.js';

const BACKLOG = 20_000;
const WINDOW = 500;

describe(`a backlog of ${BACKLOG} messages`, () => {
  let q: Queue<number>;
  let readyDir: string;
  let allNames: string[];

  beforeAll(async () => {
    const dir = await spoolPath();
    // one file per message: the window is over file names
    q = await openQueue<number>(dir, { durability: 'none', prefetch: WINDOW, envelopes: false });
    for (let i = 0; i < BACKLOG; i += 1_000) {
      // three priorities, so the window has to pick across buckets
      await q.pushMany(
        Array.from({ length: 1_000 }, (_, j) => i + j),
        { priority: [9, 4, 0][(i / 1_000) % 3] as number },
      );
    }
    readyDir = join(dir, 'groups/default/ready');
    allNames = [];
    for (const bucket of await readdir(readyDir)) allNames.push(...(await readdir(join(readyDir, bucket))));
    allNames.sort();
  }, 120_000);

  afterAll(async () => {
    await q.close();
    await cleanup();
  });

  it('a scan keeps only the window: the smallest names in delivery order', async () => {
    expect(allNames).toHaveLength(BACKLOG);
    const scan = await scanReady(readyDir, DEFAULT_BUCKET_MS, WINDOW, Date.now());
    expect(scan.entries).toHaveLength(WINDOW);
    expect(scan.entries.map((e) => e.name)).toEqual(allNames.slice(0, WINDOW));
  });

  it('after a jump the index still yields every name exactly once, wrapping around', () => {
    const index = new ReadyIndex(10);
    const entries = Array.from({ length: 10 }, (_, i) => ({ dir: 'd', name: `${i}` }));
    index.replace(entries);
    expect(index.shift()?.name).toBe('0');
    index.jump(() => 0.75); // to slot 7
    const rest = Array.from({ length: 9 }, () => index.shift()?.name);
    expect(rest).toEqual(['7', '8', '9', '1', '2', '3', '4', '5', '6']);
    expect(index.shift()).toBeUndefined();
    expect(index.size).toBe(0);
  });

  it('the index refuses to hold more than its window', () => {
    const index = new ReadyIndex(3);
    expect(() => index.replace(Array.from({ length: 4 }, (_, i) => ({ dir: 'd', name: `${i}` })))).toThrow(RangeError);
  });

  it('pops drain across several windows in priority then FIFO order', async () => {
    const expected = allNames.slice(0, 3 * WINDOW + 7);
    for (const name of expected) {
      const m = await q.pop({ timeoutMs: 0 });
      expect(name).toContain(m?.id);
      await m?.ack();
    }
    const stats = await q.stats();
    expect(stats.ready).toBe(BACKLOG - expected.length);
  });
});
