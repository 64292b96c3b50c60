/** Producers and consumers coming and going: one-shot producers, concurrent creation, purge. */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { formatBucket } from '../lib/names.js';
import { cleanup, runFixture, spoolPath } from './helpers.js';

afterEach(cleanup);

describe('one-shot producers', () => {
  it('a process that pushes and closes at once wakes a waiting consumer by its doorbell', async () => {
    const spool = await spoolPath();
    await (await openQueue(spool)).close();
    const waiter = runFixture('proc-wait.mjs', [spool, JSON.stringify({ reconcileMs: 60_000 }), '3']);
    await waiter.line((l) => l.includes('"waiting"'));
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      const producer = runFixture('oneshot-push.mjs', [spool, `job-${i}`]);
      expect(await producer.exited).toBe(0);
      const got = JSON.parse(await waiter.line((l) => l.includes(`"job-${i}"`), 10_000));
      // Not the 60 s reconciliation scan: the ring of the closed producer was seen.
      expect(got.at - before).toBeLessThan(5_000);
    }
    expect(await waiter.exited).toBe(0);
  });

  it('doorbell files of closed producers are swept, so the watched set stays small', async () => {
    const spool = await spoolPath();
    const doorbell = join(spool, 'groups/default/doorbell');
    for (let i = 0; i < 5; i++) {
      const q = await openQueue(spool, { durability: 'none' });
      await q.push(i);
      await q.close();
    }
    expect((await readdir(doorbell)).length).toBe(5); // each producer's last ring stays
    const { sweepDoorbell } = await import('../lib/doorbell.js');
    await sweepDoorbell(doorbell, 10_000, Date.now() + 11_000);
    expect(await readdir(doorbell)).toEqual([]);
  });
});

describe('several processes creating one spool at once', () => {
  it('all of them open it, whatever the interleaving', async () => {
    for (let round = 0; round < 4; round++) {
      const spool = await spoolPath();
      const startAt = Date.now() + 400;
      const children = Array.from({ length: 5 }, (_, i) =>
        runFixture('open-race.mjs', [spool, round % 2 ? `g${i}` : 'default', String(startAt)]),
      );
      await Promise.all(children.map((c) => c.exited));
      expect(children.map((c) => c.stdout().trim())).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    }
  });
});

describe('purge', () => {
  it('leaves current buckets in place (a producer may be linking into one) and removes old ones', async () => {
    const spool = await spoolPath();
    const q = await openQueue(spool, { durability: 'none' });
    const ready = join(spool, 'groups/default/ready');
    await q.push('now');
    // The bucket the push made (read back, not computed from the clock now: the test may cross a
    // 10 s bucket boundary, as it once did in CI)
    const current = await readdir(ready);
    expect(current).toHaveLength(1);
    await mkdir(join(ready, formatBucket(4, 0, 10_000))); // a bucket from 1970
    expect(await q.purge()).toBe(1);
    expect(await readdir(ready)).toEqual(current);
    await q.push('after'); // the commit's fsync of the bucket still works
    expect((await q.stats()).ready).toBe(1);
    await q.close();
  });

  it('a bucket removed before its commit fsync is not a durability failure', async () => {
    const { GroupCommit } = await import('../lib/group-commit.js');
    const commit = new GroupCommit(true, () => {});
    await commit.commit({ dirs: [join(await spoolPath(), 'gone')], doorbells: [] });
    expect(commit.failure).toBeNull();
  });
});
