/**
 * fsck removes an ack file only when no lease has its token, and only when it was last written
 * over an hour ago (Fsck #checkAckFiles). A lease held that long, extended by its consumer, has
 * its name renamed on each extension (the token stays), and a listing of a large leased/ is not a
 * snapshot: a rename during it can be missed under both names (move-out-listing.spec.ts). So fsck
 * lists leased/ again before it removes anything. Here the fs mock plays the missed rename: the
 * listings of leased/ come back without the held lease until fsck has looked at the ack file's
 * age, as if the rename fell in the first listing.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { fsck, openQueue } from '../lib/index.js';
import { cleanup, spoolPath } from './helpers.js';

const hook: { hideLeased: boolean } = { hideLeased: false };

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    readdir: async (dir: string, options?: never) => {
      const names = await real.readdir(dir, options);
      return typeof dir === 'string' && dir.endsWith('/leased') && hook.hideLeased ? [] : names;
    },
    lstat: async (path: string, options?: never) => {
      if (typeof path === 'string' && path.includes('/.acks-')) hook.hideLeased = false; // the rename is over
      return real.lstat(path, options);
    },
  };
});

afterEach(async () => {
  hook.hideLeased = false;
  await cleanup();
});

it('fsck --repair keeps an old ack file whose lease the first listing of leased/ missed', async () => {
  const spool = await spoolPath();
  const q = await openQueue<number>(spool, { durability: 'none', leaseMs: 1_000 });
  await q.pushMany([0, 1, 2]);
  await (await q.pop({ timeoutMs: 0 }))?.ack(); // record 0, into the lease's ack file; 1 and 2 held
  const group = join(spool, 'groups/default');
  const [ackFile] = fs.readdirSync(group).filter((n) => n.startsWith('.acks-') && !n.startsWith('.acks-spare-'));
  expect(ackFile, 'the lease has an ack file').toBeDefined();
  const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
  fs.utimesSync(join(group, ackFile as string), twoHoursAgo, twoHoursAgo);

  hook.hideLeased = true;
  const report = await fsck(spool, { repair: true });
  expect(hook.hideLeased, 'fsck looked at the ack file, so the first listing missed the lease').toBe(false);
  expect(report.problems.filter((p) => p.kind === 'stale-tmp')).toEqual([]);
  expect(fs.existsSync(join(group, ackFile as string)), 'the ack file is still there').toBe(true);

  // Its ack still counts: once the lease expires, a reaper reads the file, and only records 1 and 2 come back.
  await new Promise((r) => setTimeout(r, 1_100));
  const later = await openQueue<number>(spool, { durability: 'none' }); // its open reaps
  const back: Array<[number, number]> = [];
  for (let m = await later.pop({ timeoutMs: 0 }); m; m = await later.pop({ timeoutMs: 0 })) {
    back.push([m.data, m.attempts]);
    await m.ack();
  }
  expect(back).toEqual([
    [1, 2],
    [2, 2],
  ]);
  await Promise.all([q.close(), later.close()]);
});
