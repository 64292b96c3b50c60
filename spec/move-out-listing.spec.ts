/**
 * A listing of leased/ is not a snapshot once it is large (several getdents64 reads): a name
 * renamed during it can be missed under both its old and its new name. A reaper could then see
 * a leftover link of an interrupted move-out without its holder, because another reaper had just
 * claimed the holder (keeping its token) into a part of the directory already read, and was
 * killed before removing the leftover. Claiming the leftover, the reaper must find that claim
 * among the names with its token and give the leftover up, not remove the holder: before this
 * was so, the record that only the holder held was lost (found in review, with 450 leases in
 * leased/ and a delayed getdents64).
 *
 * Here the fs mock plays the missed rename: the reap's listing of leased/ comes back without the
 * holder, which was renamed meanwhile to the other reaper's claim name (same token, a later
 * deadline). The crash state is made at the protocol level (names.ts): a part of 5 records
 * claimed by a consumer that acked record 0 and was killed between the link and the rename of
 * its nack of record 1 (Leases #moveOut), its lease expired.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { openQueue } from '../lib/index.js';
import { formatLeased, formatReady, newToken, parseReady } from '../lib/names.js';
import { cleanup, listFiles, spoolPath } from './helpers.js';

const hook: { onLeasedListing?: (names: string[]) => string[] } = {};

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    readdir: async (dir: string, options?: never) => {
      const names = (await real.readdir(dir, options)) as unknown as string[];
      if (typeof dir === 'string' && dir.endsWith('/leased') && hook.onLeasedListing) {
        const play = hook.onLeasedListing;
        hook.onLeasedListing = undefined; // once
        return play(names);
      }
      return names;
    },
  };
});

afterEach(async () => {
  hook.onLeasedListing = undefined;
  await cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('a reaper that claims a leftover link whose holder it did not list gives it up: nothing is lost', async () => {
  const spool = await spoolPath();
  const producer = await openQueue<number>(spool, { durability: 'fsync' });
  const ids = await producer.pushMany([0, 1, 2, 3, 4]);
  await producer.close();
  const group = join(spool, 'groups/default');
  const [bucket] = fs.readdirSync(join(group, 'ready'));
  const [part] = fs.readdirSync(join(group, 'ready', bucket as string));
  const ready = parseReady(part as string);
  if (!ready) throw new Error(`not a ready name: ${part}`);
  // The dead consumer's lease, expired, record 0 acked; and the leftover of its nack of record 1.
  const token = newToken();
  const leasedName = (deadline: number, settled: bigint) => formatLeased({ deadline, ready: formatReady({ ...ready, settled }), token });
  const expired = Date.now() - 1_000;
  const holder = leasedName(expired, 0b1n);
  const leftover = leasedName(expired, 0b11n);
  fs.renameSync(join(group, 'ready', bucket as string, part as string), join(group, 'leased', holder));
  fs.linkSync(join(group, 'leased', holder), join(group, 'leased', leftover));

  // Reaper A's claim of the holder (token kept, its own deadline), made while B lists leased/
  // and missed by that listing; A is killed before it removes the leftover.
  const claimA = leasedName(Date.now() + 400, 0b1n);
  hook.onLeasedListing = (names) => {
    expect(names.sort()).toEqual([holder, leftover]);
    fs.renameSync(join(group, 'leased', holder), join(group, 'leased', claimA));
    return [leftover];
  };
  // B: openQueue returns expired leases (recovery), here from that listing.
  const q = await openQueue<number>(spool, { durability: 'fsync', leaseMs: 300 });
  expect(hook.onLeasedListing, 'the listing was played').toBeUndefined();
  expect(fs.readdirSync(join(group, 'leased')), "A's claim is kept, B's claim of the leftover is gone").toEqual([claimA]);

  await sleep(500); // A's claim expires; the next reap splits it
  const got: Array<[string, number]> = [];
  for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
    got.push([m.id, m.attempts]);
    await m.ack();
  }
  expect(got.sort()).toEqual(ids.slice(1).map((id) => [id, 2]));
  expect((await listFiles(group)).filter((f) => /^(ready|leased|dead)\/./.test(f) && !f.endsWith('/'))).toEqual([]);
  await q.close();
});
