/**
 * Two fault paths of a move-out (Leases #moveOut) that the kill and listing specs do not reach,
 * with an fs wrapper (vi.mock of node:fs) in the queue's own process:
 *   - the rename fails with EPERM: that is a failure of the nack, not "this file system has no
 *     hard links" (only link() failing says that), so no copy is written and nothing changes;
 *   - the rename's target is already a name of the same file (a duplicate made by some earlier
 *     fault): rename() then does nothing and succeeds, and the lease's name must go anyway;
 *   - where there are no hard links (link() fails with EPERM, as on the FUSE mount of
 *     no-hardlinks.spec.ts), the copy's bucket is removed between its mkdir and the copy's rename
 *     into it: the nack makes it again, and does not report its lease lost; removed each time,
 *     the nack fails with a storage error and leaves the lease as it was, no copy behind;
 *   - with durability 'fsync', another consumer claims the moved-out message and removes its
 *     (old, empty) bucket before the nack's fsync of that bucket: nothing is left there to make
 *     durable, so the nack resolves, with hard links (#moveOut) and without (#copyOut).
 * Consumers remove only buckets three bucket-lengths old, and these target the present one, so
 * here the spec removes them itself.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { openQueue } from '../lib/index.js';
import { allRecords, formatBucket, formatReady, parseLeased, parseReady, recordBit } from '../lib/names.js';
import { cleanup, listFiles, spoolPath } from './helpers.js';

const hook: {
  renameSync?: (from: string, to: string) => void;
  linkSync?: (from: string, to: string) => void;
  openSync?: (path: string, flags: number) => void;
} = {};

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    renameSync: (from: string, to: string) => {
      hook.renameSync?.(String(from), String(to));
      return real.renameSync(from, to);
    },
    linkSync: (from: string, to: string) => {
      hook.linkSync?.(String(from), String(to));
      return real.linkSync(from, to);
    },
    openSync: (path: string, flags?: fs.OpenMode, mode?: fs.Mode) => {
      hook.openSync?.(String(path), typeof flags === 'number' ? flags : 0);
      return real.openSync(path, flags ?? 'r', mode);
    },
  };
});

afterEach(async () => {
  hook.renameSync = undefined;
  hook.linkSync = undefined;
  hook.openSync = undefined;
  vi.restoreAllMocks();
  await cleanup();
});

const isMoveOut = (from: string, to: string) => from.includes('/leased/') && to.includes('/ready/');

const noLinks = (from: string) => {
  throw Object.assign(new Error(`EPERM: operation not permitted, link '${from}'`), { code: 'EPERM', syscall: 'link' });
};

/** A queue holding an envelope of a, b and c, whose first message is popped (leased). */
async function firstOfThree(durability: 'none' | 'fsync' = 'none') {
  const spool = await spoolPath();
  const q = await openQueue<string>(spool, { durability, leaseMs: 60_000 });
  const ids = await q.pushMany(['a', 'b', 'c']);
  const m = await q.pop({ timeoutMs: 0 });
  if (!m) throw new Error('nothing popped');
  return { spool, q, ids, m, leasedDir: join(spool, 'groups/default/leased') };
}

it('EPERM from the rename of a move-out fails the nack and changes nothing: no copy, no fallback', async () => {
  const { spool, q, ids, m, leasedDir: leased } = await firstOfThree();
  const before = fs.readdirSync(leased);
  hook.renameSync = (from, to) => {
    if (isMoveOut(from, to))
      throw Object.assign(new Error(`EPERM: operation not permitted, rename '${from}'`), { code: 'EPERM', syscall: 'rename' });
  };
  await expect(m.nack({ delayMs: 0 })).rejects.toMatchObject({ code: 'ESTORAGE' });
  hook.renameSync = undefined;
  expect(fs.readdirSync(leased), 'the lease as it was, its next name undone').toEqual(before);
  expect(fs.readdirSync(join(spool, 'tmp')), 'no copy written').toEqual([]);
  // The message is still the lease's: an ack settles it, and the others come next.
  await m.ack();
  const rest: string[] = [];
  for (let n = await q.pop({ timeoutMs: 0 }); n; n = await q.pop({ timeoutMs: 0 })) {
    rest.push(n.id);
    await n.ack();
  }
  expect(rest).toEqual(ids.slice(1));
  await q.close();
});

it("a move-out whose target is already a name of the same file removes the lease's name", async () => {
  const { spool, q, ids, m, leasedDir } = await firstOfThree();
  const [lease] = fs.readdirSync(leasedDir);
  const ready = parseReady(parseLeased(lease as string)?.ready as string);
  if (!ready) throw new Error('no lease');
  // The nack's target, made beforehand as another name of the same file (time held still).
  const now = Date.now();
  vi.spyOn(Date, 'now').mockReturnValue(now);
  const target = join(
    spool,
    'groups/default/ready',
    formatBucket(ready.priority, now, 10_000),
    formatReady({ ...ready, id: m.id, attempt: ready.attempt + 1, visibleAt: now, settled: allRecords(3) & ~recordBit(0) }),
  );
  fs.mkdirSync(join(target, '..'), { recursive: true });
  fs.linkSync(join(leasedDir, lease as string), target);
  let noOp = false;
  hook.renameSync = (from, to) => {
    if (isMoveOut(from, to)) noOp = to === target && fs.statSync(from).ino === fs.statSync(to).ino;
  };
  await m.nack({ delayMs: 0 });
  expect(noOp, 'the rename was onto another name of the same file').toBe(true);
  vi.restoreAllMocks();
  const left = fs.readdirSync(leasedDir);
  expect(left, 'only the rest of the part is leased').toHaveLength(1);
  expect(parseReady(parseLeased(left[0] as string)?.ready as string)?.settled).toBe(recordBit(0));
  expect((await listFiles(join(spool, 'groups/default/ready'))).filter((f) => !f.endsWith('/')).map((f) => f.split('/').at(-1))).toEqual([
    target.split('/').at(-1),
  ]);
  await q.close();
  // Nothing is delivered twice: a, then b and c.
  const r = await openQueue<string>(spool, { durability: 'none' });
  const got: string[] = [];
  for (let n = await r.pop({ timeoutMs: 0 }); n; n = await r.pop({ timeoutMs: 0 })) {
    got.push(n.id);
    await n.ack();
  }
  expect(got.sort()).toEqual([...ids].sort());
  await r.close();
});

/** Pops and acks until the queue is empty; the ids, sorted. */
async function drainIds(q: Awaited<ReturnType<typeof firstOfThree>>['q']): Promise<string[]> {
  const got: string[] = [];
  for (let n = await q.pop({ timeoutMs: 0 }); n; n = await q.pop({ timeoutMs: 0 })) {
    got.push(n.id);
    await n.ack();
  }
  return got.sort();
}

it('without hard links, a nack whose bucket is removed just before its copy lands makes the bucket again: not ELEASE_LOST', async () => {
  const { spool, q, ids, m, leasedDir } = await firstOfThree();
  hook.linkSync = noLinks;
  const tmpDir = `${join(spool, 'tmp')}/`;
  let removed = '';
  hook.renameSync = (from, to) => {
    // The copy's rename from tmp/ into its ready/ bucket: remove that (empty) bucket first, once.
    if (removed === '' && from.startsWith(tmpDir) && to.includes('/ready/')) {
      removed = join(to, '..');
      fs.rmdirSync(removed);
    }
  };
  await m.nack({ delayMs: 0 });
  hook.linkSync = undefined;
  hook.renameSync = undefined;
  expect(removed, 'the bucket was removed under the copy').not.toBe('');
  expect(fs.readdirSync(join(spool, 'tmp')), 'no copy left in tmp/').toEqual([]);
  const back = (await listFiles(join(spool, 'groups/default/ready'))).filter((f) => !f.endsWith('/'));
  expect(back, 'the copy is in the bucket made again').toHaveLength(1);
  expect(back[0]?.startsWith(`${removed.slice(join(spool, 'groups/default/ready').length + 1)}/`)).toBe(true);
  expect(parseReady(back[0]?.split('/').at(-1) as string)).toMatchObject({ id: m.id, attempt: 2 });
  const left = fs.readdirSync(leasedDir).filter((f) => !f.startsWith('.'));
  expect(left, 'the lease holds the rest').toHaveLength(1);
  expect(parseReady(parseLeased(left[0] as string)?.ready as string)?.settled).toBe(recordBit(0));
  expect(await drainIds(q), 'every message once: the nacked one again, then b and c').toEqual([...ids].sort());
  await q.close();
});

it('without hard links, a nack whose bucket is removed every time it is made fails with ESTORAGE and changes nothing', async () => {
  const { spool, q, ids, m, leasedDir } = await firstOfThree();
  const before = fs.readdirSync(leasedDir);
  hook.linkSync = noLinks;
  const tmpDir = `${join(spool, 'tmp')}/`;
  let removals = 0;
  hook.renameSync = (from, to) => {
    if (from.startsWith(tmpDir) && to.includes('/ready/')) {
      fs.rmdirSync(join(to, '..'));
      removals++;
    }
  };
  await expect(m.nack({ delayMs: 0 })).rejects.toMatchObject({ code: 'ESTORAGE' });
  hook.linkSync = undefined;
  hook.renameSync = undefined;
  expect(removals, 'made and removed four times').toBe(4);
  expect(fs.readdirSync(join(spool, 'tmp')), 'no copy left in tmp/').toEqual([]);
  expect(
    (await listFiles(join(spool, 'groups/default/ready'))).filter((f) => !f.endsWith('/')),
    'no copy in ready/',
  ).toEqual([]);
  expect(fs.readdirSync(leasedDir), 'the lease as it was').toEqual(before);
  // The message is still the lease's: an ack settles it, and the others come next.
  await m.ack();
  expect(await drainIds(q)).toEqual(ids.slice(1).sort());
  await q.close();
});

it.each([
  ['with hard links (#moveOut)', false],
  ['without hard links (#copyOut)', true],
] as const)(
  "durability 'fsync', %s: a bucket emptied by a claim and removed before the nack's fsync of it does not fail the nack",
  async (_, withoutLinks) => {
    const { spool, q, ids, m, leasedDir } = await firstOfThree('fsync');
    if (withoutLinks) hook.linkSync = noLinks;
    const claimed = await fs.promises.mkdtemp(join(spool, '..', 'claimed-'));
    const readyDir = `${join(spool, 'groups/default/ready')}/`;
    let taken: string[] = [];
    hook.openSync = (path, flags) => {
      // The nack's fsync of the bucket it moved the message into: another consumer took the
      // message and removed the bucket just before.
      if (taken.length === 0 && (flags & fs.constants.O_DIRECTORY) !== 0 && path.startsWith(readyDir)) {
        taken = fs.readdirSync(path);
        for (const name of taken) fs.renameSync(join(path, name), join(claimed, name));
        fs.rmdirSync(path);
      }
    };
    await m.nack({ delayMs: 0 });
    hook.openSync = undefined;
    hook.linkSync = undefined;
    expect(taken, 'the moved-out message was taken from its bucket before the fsync').toHaveLength(1);
    expect(parseReady(taken[0] as string)).toMatchObject({ id: m.id, attempt: 2 });
    const left = fs.readdirSync(leasedDir).filter((f) => !f.startsWith('.'));
    expect(left, 'the lease holds the rest, record 0 settled').toHaveLength(1);
    expect(parseReady(parseLeased(left[0] as string)?.ready as string)?.settled).toBe(recordBit(0));
    // The taken message back in ready/, as its claimant's lease would bring it: every message once.
    const bucket = join(readyDir, formatBucket(parseReady(taken[0] as string)?.priority as number, Date.now(), 10_000));
    fs.mkdirSync(bucket, { recursive: true });
    fs.renameSync(join(claimed, taken[0] as string), join(bucket, taken[0] as string));
    expect(await drainIds(q)).toEqual([...ids].sort());
    await q.close();
  },
);
