import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { cleanup, spoolPath } from './helpers.js';

afterEach(cleanup);

describe('leases', () => {
  it('a popped message is invisible to other consumers until its lease expires, then comes back with attempts 2', async () => {
    const dir = await spoolPath();
    const a = await openQueue(dir, { durability: 'none', leaseMs: 300 });
    const b = await openQueue(dir, { durability: 'none', leaseMs: 300 });
    await a.push('job');
    const first = await a.pop({ timeoutMs: 0 });
    const claimedAt = Date.now();
    expect(await b.pop({ timeoutMs: 0 })).toBeNull();
    const again = await b.pop({ timeoutMs: 3_000 });
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(290);
    expect(again?.id).toBe(first?.id);
    expect(again?.attempts).toBe(2);
    await again?.ack();
    await a.close();
    await b.close();
  });

  it('ack and extend after the lease was lost reject with ELEASE_LOST and leave the redelivered copy alone', async () => {
    const dir = await spoolPath();
    const slow = await openQueue(dir, { durability: 'none', leaseMs: 100 });
    const fast = await openQueue(dir, { durability: 'none', leaseMs: 10_000 });
    await slow.push('job');
    const stale = await slow.pop({ timeoutMs: 0 });
    const fresh = await fast.pop({ timeoutMs: 2_000 }); // reaps the expired lease, claims the copy
    expect(fresh?.attempts).toBe(2);
    await expect(stale?.ack()).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    await expect(stale?.extend(1_000)).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    await expect(stale?.nack()).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    expect(await fast.stats()).toMatchObject({ leased: 1, ready: 0 });
    await fresh?.ack();
    expect(await fast.stats()).toMatchObject({ leased: 0, ready: 0, delayed: 0 });
    await slow.close();
    await fast.close();
  });

  it('extend keeps the lease: no redelivery while extended', async () => {
    const dir = await spoolPath();
    const a = await openQueue(dir, { durability: 'none', leaseMs: 400 });
    const b = await openQueue(dir, { durability: 'none', leaseMs: 400 });
    await a.push('job');
    const m = await a.pop({ timeoutMs: 0 });
    for (let i = 0; i < 4; i++) {
      await m?.extend(400); // each round outlives the previous lease: only the extensions keep it
      expect(await b.pop({ timeoutMs: 150 })).toBeNull();
    }
    expect(m?.leaseDeadline).toBeGreaterThan(Date.now());
    await m?.ack();
    await a.close();
    await b.close();
  });

  it('nack returns the message after the backoff with attempts + 1; nack({ delayMs }) overrides it', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none', backoff: { baseMs: 200, maxMs: 10_000 } });
    await q.push('job');
    const m1 = await q.pop({ timeoutMs: 0 });
    const t1 = Date.now();
    await m1?.nack(); // attempts 1: 200 ms, jittered into [100, 200]
    expect(await q.pop({ timeoutMs: 0 })).toBeNull();
    expect((await q.stats()).delayed).toBe(1);
    const m2 = await q.pop({ timeoutMs: 2_000 });
    expect(Date.now() - t1).toBeGreaterThanOrEqual(95);
    expect(m2?.attempts).toBe(2);
    await m2?.nack({ delayMs: 0 });
    const m3 = await q.pop({ timeoutMs: 0 });
    expect(m3?.attempts).toBe(3);
    await m3?.ack();
    await expect(m3?.ack()).resolves.toBeUndefined(); // idempotent
    await expect(m3?.nack()).rejects.toMatchObject({ code: 'EMSG_SETTLED' });
    await q.close();
  });

  it('concurrent nacks that create the same new bucket all succeed (none reads the race as a lost lease)', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none' });
    await q.pushMany(Array.from({ length: 100 }, (_, i) => i));
    const held = [];
    for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) held.push(m);
    expect(held).toHaveLength(100);
    // 60 s ahead: a bucket nobody has made yet; every nack's rename first finds it missing.
    const results = await Promise.allSettled(held.map((m) => m.nack({ delayMs: 60_000 })));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(await q.stats()).toMatchObject({ leased: 0, delayed: 100 });
    await q.close();
  });

  it('after maxAttempts the message is a dead letter with the reason, and requeueDead brings it back', async () => {
    const q = await openQueue(await spoolPath(), { durability: 'none', maxAttempts: 2 });
    const id = await q.push({ job: 1 });
    await q.push('other');
    for (let attempt = 1; attempt <= 2; attempt++) {
      const m = await q.pop({ timeoutMs: 1_000 });
      if (m?.data === 'other') {
        await m.ack();
        attempt--;
        continue;
      }
      expect(m?.attempts).toBe(attempt);
      await m?.nack({ delayMs: 0, reason: `failure ${attempt}` });
    }
    expect(await q.pop({ timeoutMs: 0 })).toBeNull();
    const dead = await q.deadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ id, code: 'max-attempts', attempts: 2 });
    expect(dead[0]?.reason).toContain('failure 2');
    expect(dead[0]?.enqueuedAt).toBeTypeOf('number');
    expect((await q.stats()).dead).toBe(1);

    expect(await q.requeueDead(['not-an-id'])).toEqual([]);
    expect(await q.requeueDead()).toEqual([id]);
    expect(await q.deadLetters()).toEqual([]);
    const back = await q.pop({ timeoutMs: 0 });
    expect(back?.id).toBe(id);
    expect(back?.attempts).toBe(1);
    expect(back?.data).toEqual({ job: 1 });
    await back?.ack();
    await q.close();
  });

  it('a lease that expires on the last attempt makes a dead letter', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { durability: 'none', maxAttempts: 1, leaseMs: 50 });
    const id = await q.push('x');
    await q.pop({ timeoutMs: 0 }); // never settled
    await new Promise((r) => setTimeout(r, 80));
    expect(await q.pop({ timeoutMs: 0 })).toBeNull(); // the scan reaps it into dead/
    const dead = await q.deadLetters();
    expect(dead).toMatchObject([{ id, code: 'lease-expired', attempts: 1 }]);
    expect(await readdir(join(dir, 'groups/default/leased'))).toEqual([]);
    await q.close();
  });
});
