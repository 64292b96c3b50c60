/**
 * Envelopes (issue 6): the messages of a pushMany, or of pushes that meet in one round, share one
 * file, and are still delivered, acked and nacked one by one.
 *   - what is on disk: files of up to 128 messages, checked by the independent validator;
 *   - order: pop order is push order, and a higher priority still overtakes a claimed envelope;
 *   - a consumer SIGKILLed part-way through an envelope: what it acked or nacked is never
 *     delivered from the envelope again, the rest comes back with attempts 2;
 *   - nack of one message, the last attempt expiring, a corrupt envelope, close() with messages
 *     of an envelope not delivered yet, stats() and peek().
 */

import { spawnSync } from 'node:child_process';
import { link, mkdir, readdir, readFile, rename, rmdir, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fsck, openQueue, peek } from '../lib/index.js';
import { cleanup, FIXTURES, listFiles, runFixture, spoolPath, waitFor } from './helpers.js';
import { checkSpoolFile, READY_NAME } from './validate-file.js';

afterEach(cleanup);

/** Every file of the group's ready/ (relative paths), with the ids of the messages it holds and its inode. */
async function readyFiles(spool: string, group = 'default'): Promise<Array<{ file: string; ids: string[]; ino: number }>> {
  const ready = join(spool, 'groups', group, 'ready');
  const files = [];
  for (const file of (await listFiles(ready)).sort()) {
    const path = join(ready, file);
    files.push({ file, ids: checkSpoolFile(basename(file), await readFile(path)).map((m) => m.id), ino: (await stat(path)).ino });
  }
  return files;
}

/** How many names each inode of `files` has, in order of first appearance. */
const namesPerInode = (files: ReadonlyArray<{ ino: number }>): number[] => [
  ...files.reduce((m, f) => m.set(f.ino, (m.get(f.ino) ?? 0) + 1), new Map<number, number>()).values(),
];

/**
 * What is left of the group's messages: files in ready/, leased/ and dead/, and ack files of
 * leases (a consumer's spare ack files are not a lease's; its close() removes them).
 */
async function leftovers(spool: string, group = 'default'): Promise<string[]> {
  return (await listFiles(join(spool, 'groups', group))).filter(
    (f) => /^(ready|leased|dead)\//.test(f) || (f.startsWith('.acks-') && !f.startsWith('.acks-spare-')),
  );
}

/** Every ack file of the group, spares included. */
async function ackFiles(spool: string, group = 'default'): Promise<string[]> {
  return (await readdir(join(spool, 'groups', group))).filter((n) => n.startsWith('.acks-'));
}

/** A queue holding one envelope of 'a', 'b' and 'c', with that envelope's name, path and bytes. */
async function oneEnvelope(spool: string) {
  const q = await openQueue<string>(spool, { durability: 'none' });
  const ids = await q.pushMany(['a', 'b', 'c']);
  const [first] = await readyFiles(spool);
  const file = first?.file as string;
  const path = join(spool, 'groups/default/ready', file);
  return { q, ids, name: basename(file), path, bytes: await readFile(path) };
}

async function drain<T>(q: {
  pop: (o: { timeoutMs: number }) => Promise<{ data: T; id: string; attempts: number; ack: () => Promise<void> } | null>;
}) {
  const got: Array<{ data: T; id: string; attempts: number }> = [];
  for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
    got.push({ data: m.data, id: m.id, attempts: m.attempts });
    await m.ack();
  }
  return got;
}

describe('on disk', () => {
  it('pushMany(300) is 3 files of 128, 128 and 44 messages, each claimable in parts of 32; each delivered once, in order', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none' });
    const ids = await q.pushMany(Array.from({ length: 300 }, (_, i) => i));
    const files = await readyFiles(spool);
    // 3 inodes, of 4, 4 and 2 names: parts of up to 32 messages (claimBatch), each named after its first
    expect(namesPerInode(files)).toEqual([4, 4, 2]);
    expect(files.map((f) => f.ids.length)).toEqual([32, 32, 32, 32, 32, 32, 32, 32, 32, 12]);
    expect(files.flatMap((f) => f.ids)).toEqual(ids);
    expect(files.map((f) => READY_NAME.exec(basename(f.file))?.[1])).toEqual(files.map((f) => f.ids[0]));
    expect(files.map((f) => READY_NAME.exec(basename(f.file))?.[2])).toEqual([...Array(8).fill('80'), '2c', '2c']);
    expect(await q.stats()).toMatchObject({ ready: 300, leased: 0 });
    const got = await drain(q);
    expect(got.map((m) => m.data)).toEqual(ids.map((_, i) => i));
    expect(got.map((m) => m.id)).toEqual(ids);
    expect(got.every((m) => m.attempts === 1)).toBe(true);
    expect(await leftovers(spool)).toEqual([]);
    await q.close();
  });

  it('concurrent pushes share a file only when priority, topic and delay agree; large ones go alone', async () => {
    const spool = await spoolPath();
    const q = await openQueue<string>(spool, { durability: 'none', maxMessageBytes: 4 * 1024 * 1024 });
    const big = 'x'.repeat(1024 * 1024); // over the 1 MiB of an envelope once encoded
    const ids = await Promise.all([
      q.push('a'),
      q.push('b'),
      q.push('urgent', { priority: 0 }),
      q.push('c'),
      q.push(big),
      q.push('d'),
      q.push('later', { delayMs: 60_000 }),
    ]);
    const files = await readyFiles(spool);
    const [a, b, urgent, c, large, d, later] = ids as [string, string, string, string, string, string, string];
    expect(files.map((f) => f.ids).sort()).toEqual([[a, b], [urgent], [c], [large], [d], [later]].sort());
    const got = await drain(q);
    expect(got.map((m) => m.data.slice(0, 6))).toEqual(['urgent', 'a', 'b', 'c', 'xxxxxx', 'd']);
    await q.close();
  });

  it('a push and a pushMany with the same options share a file; each message keeps its headers, topic and bytes', async () => {
    const spool = await spoolPath();
    const q = await openQueue<Buffer>(spool, { durability: 'none', codec: 'raw' });
    const options = { headers: { who: 'zoë ✓', n: '1' }, topic: 'café.créé' }; // not ASCII: attribute lengths in bytes
    const reused = Buffer.from('first');
    const pushed = [q.push(reused, options)];
    reused.write('XXXXX'); // the caller's buffer is theirs again once push() returns
    pushed.push(q.pushMany([reused, Buffer.from('the third, longer')], options).then(([x, y]) => `${x},${y}`));
    pushed.push(q.push(Buffer.from('plain')));
    const [first, second, last] = await Promise.all(pushed);
    const ids = [first, ...(second as string).split(','), last];
    expect((await readyFiles(spool)).map((f) => f.ids)).toEqual([ids.slice(0, 3), ids.slice(3)]);
    const got = [];
    for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
      got.push({ id: m.id, body: m.data.toString(), headers: m.headers, topic: m.topic });
      await m.ack();
    }
    expect(got).toEqual([
      { id: ids[0], body: 'first', ...options },
      { id: ids[1], body: 'XXXXX', ...options },
      { id: ids[2], body: 'the third, longer', ...options },
      { id: ids[3], body: 'plain', headers: {}, topic: undefined },
    ]);
    await q.close();
  });

  it('claimBatch 128: an envelope is one name; claimBatch 1: a name per message, all of one inode', async () => {
    const spool = await spoolPath();
    const whole = await openQueue<number>(spool, { durability: 'none', claimBatch: 128 });
    const ids = await whole.pushMany(Array.from({ length: 300 }, (_, i) => i));
    let files = await readyFiles(spool);
    expect(files.map((f) => f.ids.length)).toEqual([128, 128, 44]);
    expect(files.map((f) => READY_NAME.exec(basename(f.file))?.[1])).toEqual([ids[0], ids[128], ids[256]]);
    expect((await drain(whole)).map((m) => m.id)).toEqual(ids);
    const single = await openQueue<number>(spool, { durability: 'none', claimBatch: 1 });
    const more = await single.pushMany([0, 1, 2]);
    files = await readyFiles(spool);
    expect(namesPerInode(files)).toEqual([3]);
    expect(files.map((f) => f.ids)).toEqual(more.map((id) => [id]));
    expect((await drain(single)).map((m) => m.id)).toEqual(more);
    expect(await leftovers(spool)).toEqual([]);
    await Promise.all([whole.close(), single.close()]);
  });

  it('with envelopes: false every message is a file of its own', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none', envelopes: false });
    await q.pushMany([1, 2, 3]);
    expect((await readyFiles(spool)).map((f) => f.ids.length)).toEqual([1, 1, 1]);
    await q.close();
  });
});

describe('delivery', () => {
  it('a higher priority pushed while a consumer holds an envelope overtakes the rest of it', async () => {
    const q = await openQueue<string>(await spoolPath(), { durability: 'none' });
    await q.pushMany(['low-0', 'low-1', 'low-2', 'low-3']);
    const first = await q.pop({ timeoutMs: 0 });
    await first?.ack();
    await q.push('urgent', { priority: 0 });
    await new Promise((r) => setTimeout(r, 600)); // a busy consumer re-reads its directory at most every 50-500 ms
    expect((await drain(q)).map((m) => m.data)).toEqual(['urgent', 'low-1', 'low-2', 'low-3']);
    await q.close();
  });

  it('consumers share an envelope: while one holds a part of it, the next consumer gets the next part', async () => {
    const spool = await spoolPath();
    const consumers = await Promise.all([1, 2, 3, 4, 5].map(() => openQueue<number>(spool, { durability: 'none' })));
    const producer = await openQueue<number>(spool, { durability: 'none', group: null });
    const ids = await producer.pushMany(Array.from({ length: 128 }, (_, i) => i));
    const first = [];
    for (const c of consumers) first.push(await c.pop({ timeoutMs: 0 }));
    // one part of 32 each; the fifth finds every part held
    expect(first.map((m) => m?.data ?? null)).toEqual([0, 32, 64, 96, null]);
    expect(await consumers[0]?.stats()).toMatchObject({ ready: 0, leased: 128 });
    for (const [i, c] of consumers.slice(0, 4).entries()) {
      await first[i]?.ack();
      expect((await drain(c)).map((m) => m.data)).toEqual(Array.from({ length: 31 }, (_, j) => 32 * i + j + 1));
    }
    expect(await leftovers(spool)).toEqual([]);
    expect(ids).toHaveLength(128);
    await Promise.all([producer, ...consumers].map((q) => q.close()));
  });

  it('a consumer that stops part-way through its part: the reaper returns the rest of that part only', async () => {
    const spool = await spoolPath();
    const stalled = await openQueue<number>(spool, { durability: 'none', leaseMs: 300 });
    const producer = await openQueue<number>(spool, { durability: 'none', group: null });
    const ids = await producer.pushMany(Array.from({ length: 64 }, (_, i) => i));
    for (let i = 0; i < 5; i++) await (await stalled.pop({ timeoutMs: 0 }))?.ack();
    expect((await stalled.pop({ timeoutMs: 0 }))?.data).toBe(5); // delivered, never settled
    const other = await openQueue<number>(spool, { durability: 'none' });
    const got = [];
    for (let m = await other.pop({ timeoutMs: 2_000 }); m; m = await other.pop({ timeoutMs: 500 })) {
      got.push({ id: m.id, attempts: m.attempts });
      await m.ack();
    }
    // the other part at once, then, once the stalled lease expired, what the stalled one had not acked, again
    expect(got).toEqual([...ids.slice(32).map((id) => ({ id, attempts: 1 })), ...ids.slice(5, 32).map((id) => ({ id, attempts: 2 }))]);
    expect(await leftovers(spool)).toEqual([]);
    await Promise.all([producer.close(), stalled.close(), other.close()]);
  });

  it('stats() and peek() count and show the messages an envelope still holds', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none' });
    await q.pushMany([1, 2, 3, 4]);
    expect((await peek(spool)).map((p) => p.data)).toEqual([1, 2, 3, 4]);
    const m = await q.pop({ timeoutMs: 0 });
    // The envelope is claimed whole: its other messages are leased to this consumer too.
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 4 });
    await m?.ack();
    expect(await q.stats()).toMatchObject({ ready: 0, leased: 3 });
    await q.close(); // gives the envelope back: none of its messages is in a handler's hands
    const again = await openQueue<number>(spool, { durability: 'none' });
    expect(await again.stats()).toMatchObject({ ready: 3, leased: 0 });
    expect((await peek(spool)).map((p) => p.data)).toEqual([2, 3, 4]);
    expect((await drain(again)).map((x) => [x.data, x.attempts])).toEqual([
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
    expect(await again.purge()).toBe(0);
    await again.close();
  });

  it('an envelope in parts: stats(), peek(), fsck() and purge() count each message once', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none' });
    await q.pushMany(Array.from({ length: 100 }, (_, i) => i));
    expect(await q.stats()).toMatchObject({ ready: 100, leased: 0 });
    expect((await peek(spool, { limit: 1000 })).map((p) => p.data)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const m = await q.pop({ timeoutMs: 0 });
    await m?.ack();
    expect(await q.stats()).toMatchObject({ ready: 68, leased: 31 });
    const report = await fsck(spool);
    expect(report).toMatchObject({ ready: 68, leased: 31, problems: [] });
    expect(report.checked).toBe(4); // the 4 names of the one file, each read whole
    expect(await q.purge()).toBe(68);
    await q.close();
  });

  it('fsck removes an ack file left by a lease that ended over an hour ago, and no other', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none' });
    await q.pushMany([0, 1, 2]);
    await (await q.pop({ timeoutMs: 0 }))?.ack(); // the lease's own ack file, live
    const group = join(spool, 'groups/default');
    const [live] = (await readdir(group)).filter((n) => n.startsWith('.acks-'));
    const stale = join(group, '.acks-00112233445566aa');
    const fresh = join(group, '.acks-00112233445566bb'); // as a consumer that died a minute ago left it
    await writeFile(stale, Buffer.from([1]));
    await writeFile(fresh, Buffer.from([1]));
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(stale, hoursAgo, hoursAgo);
    await utimes(join(group, live as string), hoursAgo, hoursAgo); // old, but its lease is there
    const found = await fsck(spool);
    expect(found.problems.map((p) => [p.kind, p.path, p.repaired])).toEqual([
      ['stale-tmp', 'groups/default/.acks-00112233445566aa', false],
    ]);
    expect(found.leased).toBe(2);
    const repaired = await fsck(spool, { repair: true });
    expect(repaired.problems.map((p) => [p.kind, p.repaired])).toEqual([['stale-tmp', true]]);
    expect((await readdir(group)).filter((n) => n.startsWith('.acks-')).sort()).toEqual([live, basename(fresh)].sort());
    await q.close();
  });

  it('nack of one message: it comes back alone with attempts 2; the rest of the envelope is not touched', async () => {
    const spool = await spoolPath();
    const q = await openQueue<string>(spool, { durability: 'fsync' });
    await q.pushMany(['a', 'b', 'c']);
    const a = await q.pop({ timeoutMs: 0 });
    const b = await q.pop({ timeoutMs: 0 });
    await b?.nack({ delayMs: 0 });
    await a?.ack();
    const rest = await drain(q);
    // c first: the rest of a claimed envelope goes before messages of the same priority
    expect(rest.map((m) => [m.data, m.attempts])).toEqual([
      ['c', 1],
      ['b', 2],
    ]);
    expect(rest[1]?.id).toBe(b?.id);
    expect(await leftovers(spool)).toEqual([]);
    expect(await readdir(join(spool, 'tmp'))).toEqual([]);
    await q.close();
  });

  it('nack of a message of an envelope whose group was deleted meanwhile: ELEASE_LOST, nothing left behind', async () => {
    const spool = await spoolPath();
    const q = await openQueue<string>(spool, { durability: 'none', group: 'doomed' });
    await q.pushMany(['a', 'b']);
    const a = await q.pop({ timeoutMs: 0 });
    const admin = await openQueue(spool, { group: null });
    expect(await admin.deleteGroup('doomed')).toBe(true);
    await expect(a?.nack({ delayMs: 0 })).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    expect(await readdir(join(spool, 'tmp'))).toEqual([]);
    await admin.close();
    await q.close();
  });

  it('the last attempt: a nacked message becomes a dead letter of its own, and requeueDead brings it back', async () => {
    const spool = await spoolPath();
    const q = await openQueue<string>(spool, { durability: 'none', maxAttempts: 1 });
    await q.pushMany(['a', 'b', 'c']);
    await (await q.pop({ timeoutMs: 0 }))?.ack();
    const b = await q.pop({ timeoutMs: 0 });
    await b?.nack({ reason: 'bad b' });
    await (await q.pop({ timeoutMs: 0 }))?.ack();
    const dead = await q.deadLetters();
    expect(dead.map((d) => [d.id, d.code, d.attempts])).toEqual([[b?.id, 'max-attempts', 1]]);
    expect(dead[0]?.reason).toMatch(/bad b/);
    expect(await q.requeueDead([b?.id as string])).toEqual([b?.id]);
    expect((await drain(q)).map((m) => m.data)).toEqual(['b']);
    await q.close();
  });

  it('an expired last attempt splits the envelope into dead letters: only the messages not settled', async () => {
    const spool = await spoolPath();
    const q = await openQueue<string>(spool, { durability: 'none', maxAttempts: 1, leaseMs: 100 });
    const ids = await q.pushMany(['a', 'b', 'c', 'd']);
    await (await q.pop({ timeoutMs: 0 }))?.ack(); // a
    const b = await q.pop({ timeoutMs: 0 }); // never settled
    // c and d, after b's lease ran out: popping one of them renews the envelope's lease
    // (nobody had taken it back), so they are delivered; b shares that lease.
    await new Promise((r) => setTimeout(r, 150));
    expect(Date.now()).toBeGreaterThan(b?.leaseDeadline as number);
    const c = await q.pop({ timeoutMs: 0 });
    expect(c?.data).toBe('c');
    expect(b?.leaseDeadline).toBe(c?.leaseDeadline);
    await c?.ack();
    await (await q.pop({ timeoutMs: 0 }))?.ack(); // d
    await new Promise((r) => setTimeout(r, 150));
    expect(await q.pop({ timeoutMs: 0 })).toBeNull(); // this scan reaps the expired lease
    const dead = await q.deadLetters();
    expect(dead.map((d) => [d.id, d.code, d.attempts])).toEqual([[ids[1], 'lease-expired', 1]]);
    expect(await readdir(join(spool, 'groups/default/leased'))).toEqual([]);
    await expect(b?.ack()).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    expect(await q.requeueDead()).toEqual([ids[1]]);
    expect((await drain(q)).map((m) => m.data)).toEqual(['b']);
    expect(await leftovers(spool)).toEqual([]);
    await q.close();
  });

  it('an ack after the lease was lost and the envelope split rejects with ELEASE_LOST: every record comes back', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none', leaseMs: 100 });
    const ids = await q.pushMany([0, 1, 2, 3]);
    const late = await q.pop({ timeoutMs: 0 }); // record 0: the lease runs out before its ack
    const early = await q.pop({ timeoutMs: 0 }); // record 1: acked in time, into the ack file
    await early?.ack();
    await new Promise((r) => setTimeout(r, 150));
    const other = await openQueue<number>(spool, { durability: 'none' });
    expect((await drain(other)).map((m) => [m.id, m.attempts])).toEqual([0, 2, 3].map((i) => [ids[i], 2]));
    await expect(late?.ack()).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    expect(await drain(other)).toEqual([]);
    expect(await leftovers(spool), 'no ack file is left, by the reaper or by the late ack').toEqual([]);
    // Lost before any ack of its lease: the late ack's own new file goes too.
    await q.pushMany([4, 5]);
    const lone = await q.pop({ timeoutMs: 0 });
    await new Promise((r) => setTimeout(r, 150));
    const third = await openQueue<number>(spool, { durability: 'none' }); // its open reaps the expired lease
    expect((await drain(third)).map((m) => m.data)).toEqual([4, 5]);
    await expect(lone?.ack()).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    expect(await leftovers(spool)).toEqual([]);
    await Promise.all([q.close(), other.close(), third.close()]);
    expect(await ackFiles(spool), 'close() removes the spare ack files').toEqual([]);
  });

  it('a bit flipped in one record: the others are delivered, that one is a dead letter with the reason', async () => {
    const spool = await spoolPath();
    const { q, ids, path, bytes } = await oneEnvelope(spool);
    await q.pushMany(['d', 'e'], { priority: 9 });
    bytes.writeUInt8((bytes.readUInt8(bytes.length - 2) ^ 0x40) & 0xff, bytes.length - 2); // a bit of the last record's payload
    await writeFile(path, bytes);
    // a and b are back in ready/ as messages of their own, and still before the priority 9 ones
    expect((await drain(q)).map((m) => [m.data, m.attempts])).toEqual([
      ['a', 1],
      ['b', 1],
      ['d', 1],
      ['e', 1],
    ]);
    const dead = await q.deadLetters();
    // named after the file's first record, so that a redo by another reaper writes the same one
    expect(dead.map((d) => [d.code, d.id])).toEqual([['corrupt', `${ids[0]}.2`]]);
    expect(dead[0]?.reason).toMatch(/^envelope: record 2: CRC mismatch/);
    expect(ids).toHaveLength(3);
    expect(await leftovers(spool)).toEqual([`dead/${dead[0]?.file}`, `dead/${dead[0]?.file}.why`]);
    await q.close();
  });

  it('a truncated envelope: the records before the cut are delivered, the rest is one dead letter', async () => {
    const { q, path, bytes } = await oneEnvelope(await spoolPath());
    await writeFile(path, bytes.subarray(0, bytes.length - 5)); // into the last record
    expect((await drain(q)).map((m) => m.data)).toEqual(['a', 'b']);
    const dead = await q.deadLetters();
    expect(dead.map((d) => d.code)).toEqual(['corrupt']);
    expect(dead[0]?.reason).toMatch(/^envelope: \d+ bytes after record 1 are not a record/);
    await q.close();
  });

  it('an envelope cut just after a record: the records before are delivered, the missing ones are recorded', async () => {
    const { q, path, bytes } = await oneEnvelope(await spoolPath());
    const firstLength = 20 + bytes.readUInt32LE(8) + bytes.readUInt32LE(12);
    await writeFile(path, bytes.subarray(0, firstLength)); // record 0 whole, 1 and 2 gone
    expect((await drain(q)).map((m) => m.data)).toEqual(['a']);
    const dead = await q.deadLetters();
    expect(dead.map((d) => [d.code, d.reason])).toEqual([
      ['corrupt', 'envelope: records 1 to 2 are missing (the file ends after record 0)'],
    ]);
    await q.close();
  });

  it("a record over the consumer's maxMessageBytes is a dead letter of its own; its neighbours are delivered", async () => {
    const spool = await spoolPath();
    const producer = await openQueue<string>(spool, { durability: 'none', maxMessageBytes: 2_000_000 });
    const ids = await producer.pushMany(['a', 'x'.repeat(600_000), 'b']);
    const consumer = await openQueue<string>(spool, { durability: 'none', maxMessageBytes: 500_000 });
    expect((await drain(consumer)).map((m) => m.data)).toEqual(['a', 'b']);
    const dead = await consumer.deadLetters();
    expect(dead.map((d) => [d.code, d.id, d.attempts])).toEqual([['too-large', ids[1], 1]]);
    // a whole message file of its own, under its own name
    const file = await readFile(join(spool, 'groups/default/dead', dead[0]?.file as string));
    expect(checkSpoolFile(dead[0]?.file as string, file).map((m) => [m.id, m.payload.length])).toEqual([[ids[1], 600_002]]); // JSON: quoted
    await producer.close();
    await consumer.close();
  });
});

describe('found in review', () => {
  /** A pushMany(128): one file of 128 records under 4 part names; its paths and each record's offset. */
  async function fourParts(spool: string) {
    const q = await openQueue<number>(spool, { durability: 'none' });
    await q.pushMany(Array.from({ length: 128 }, (_, i) => i));
    const files = await readyFiles(spool);
    expect(namesPerInode(files)).toEqual([4]);
    const paths = files.map((f) => join(spool, 'groups/default/ready', f.file));
    const bytes = await readFile(paths[0] as string);
    const offsets: number[] = [];
    for (let o = 0; o < bytes.length; o += 20 + bytes.readUInt32LE(o + 8) + bytes.readUInt32LE(o + 12)) offsets.push(o);
    return { q, paths, bytes, offsets };
  }

  it('an envelope in 4 parts cut inside record 70: records 0-69 are delivered, the tail is one dead letter', async () => {
    const spool = await spoolPath();
    const { q, paths, offsets } = await fourParts(spool);
    await truncate(paths[0] as string, (offsets[70] as number) + 10); // one inode: every part sees it
    expect((await drain(q)).map((m) => m.data)).toEqual(Array.from({ length: 70 }, (_, i) => i));
    const dead = await q.deadLetters();
    expect(dead.map((d) => d.code)).toEqual(['corrupt']);
    expect(dead[0]?.reason).toMatch(/bytes after record 69/);
    await q.close();
  });

  it('fsck of an envelope in 4 parts with a bit flipped in record 100: only the part that holds it is reported', async () => {
    const spool = await spoolPath();
    const { q, paths, bytes, offsets } = await fourParts(spool);
    const at = (offsets[101] as number) - 2; // the payload of record 100
    bytes.writeUInt8((bytes.readUInt8(at) as number) ^ 0x40, at);
    await writeFile(paths[0] as string, bytes);
    const report = await fsck(spool, { repair: true });
    expect(report.problems.map((p) => [p.kind, basename(p.path)])).toEqual([['corrupt', basename(paths[3] as string)]]);
    expect(report.ready).toBe(96);
    expect((await drain(q)).map((m) => m.data)).toEqual(Array.from({ length: 96 }, (_, i) => i));
    await q.close();
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('a nack after the lease was lost and the envelope split into dead letters keeps every dead letter', async () => {
    const spool = await spoolPath();
    const opts = { durability: 'none' as const, leaseMs: 200, maxAttempts: 1 };
    const a = await openQueue<string>(spool, opts);
    const b = await openQueue<string>(spool, opts);
    const ids = await a.pushMany(['x', 'y', 'z']);
    const m = await a.pop({ timeoutMs: 0 });
    await sleep(300); // A's lease expires
    await b.pop({ timeoutMs: 0 }); // B's reaper splits the envelope into 3 dead letters
    await expect(m?.nack()).rejects.toMatchObject({ code: 'ELEASE_LOST' });
    expect((await b.deadLetters()).map((d) => d.id).sort()).toEqual([...ids].sort());
    const dead = await readdir(join(spool, 'groups/default/dead'));
    expect(dead.filter((n) => !n.endsWith('.why')).length * 2, 'a reason per dead letter, no orphan').toBe(dead.length);
    await a.close();
    await b.close();
  });

  it("a nack on the last attempt racing another consumer's reap of the same envelope loses nothing (20 rounds)", async () => {
    // Both write the record out to dead/ under the same name; before the fix the nack, finding
    // its lease lost, took back the file the reaper had linked (35 of 40 rounds lost a record).
    for (let round = 0; round < 20; round++) {
      const spool = await spoolPath();
      const opts = { durability: 'fsync' as const, leaseMs: 100, maxAttempts: 1 };
      const a = await openQueue<string>(spool, opts);
      const b = await openQueue<string>(spool, opts);
      const ids = await a.pushMany(['x', 'y', 'z']);
      const m = await a.pop({ timeoutMs: 0 });
      await sleep(120); // expired, not reaped yet
      await Promise.all([m?.nack().catch(() => {}), b.pop({ timeoutMs: 0 })]);
      const dead = new Set((await a.deadLetters()).map((d) => d.id));
      expect(
        ids.filter((id) => !dead.has(id)),
        `round ${round}: every message is a dead letter`,
      ).toEqual([]);
      await a.close();
      await b.close();
    }
  });

  it('a nacked message whose envelope is damaged before it is a dead letter, not lost (review of the move-out)', async () => {
    const spool = await spoolPath();
    const q = await openQueue<string>(spool, { durability: 'none', leaseMs: 60_000 });
    const ids = await q.pushMany(['a', 'b', 'c', 'd', 'e']);
    for (let i = 0; i < 5; i++) {
      const m = await q.pop({ timeoutMs: 0 });
      if (i === 2) await m?.nack({ delayMs: 0 });
      else await m?.ack();
    }
    // Left: record 2 alone, under a name of its own that is a link of the envelope's file.
    const [only] = await readyFiles(spool).catch(() => [] as Array<{ file: string }>);
    const path = join(spool, 'groups/default/ready', (only as { file: string }).file);
    const bytes = await readFile(path);
    // Damage the payload length of record 1 (acked): record 2 can no longer be delimited.
    const record1 = 20 + bytes.readUInt32LE(8) + bytes.readUInt32LE(12);
    bytes.writeUInt32LE(0x00ffffff, record1 + 12);
    await writeFile(path, bytes);
    expect(await q.pop({ timeoutMs: 0 })).toBeNull();
    const dead = await q.deadLetters();
    expect(dead.map((d) => d.code)).toEqual(['corrupt']);
    const deadBytes = await readFile(join(spool, 'groups/default/dead', (dead[0] as { file: string }).file));
    expect(deadBytes.includes(Buffer.from(ids[2] as string)), "record 2's bytes are in the dead letter").toBe(true);
    expect(await leftovers(spool)).toEqual([
      `dead/${(dead[0] as { file: string }).file}`,
      `dead/${(dead[0] as { file: string }).file}.why`,
    ]);
    await q.close();
  });

  it('deadLetters() shows the enqueue time of a message of an envelope, not null (review of the move-out)', async () => {
    const q = await openQueue<string>(await spoolPath(), { durability: 'none', maxAttempts: 1 });
    await q.pushMany(['a', 'b', 'c']);
    await q.pop({ timeoutMs: 0 }).then((m) => m?.ack());
    const m = await q.pop({ timeoutMs: 0 });
    await m?.nack({ reason: 'no' });
    const letters = await q.deadLetters();
    expect(letters.map((d) => [d.id, d.enqueuedAt])).toEqual([[m?.id, m?.enqueuedAt]]);
    await q.close();
  });

  it('fsck --repair of an expired damaged part removes its leftover link with it (review of the move-out)', async () => {
    const { formatLeased, formatReady, newToken, parseReady } = await import('../lib/names.js');
    const spool = await spoolPath();
    const q = await openQueue<string>(spool, { durability: 'none', leaseMs: 300 });
    await q.pushMany(['a', 'b', 'c', 'd', 'e']);
    const group = join(spool, 'groups/default');
    const [only] = await readyFiles(spool);
    const file = (only as { file: string }).file;
    const ready = parseReady(basename(file));
    if (!ready) throw new Error(`not a ready name: ${file}`);
    // A dead consumer's expired lease (record 0 acked), and the leftover of its nack of record 1.
    const token = newToken();
    const deadline = Date.now() - 1_000;
    const leased = (settled: bigint) => join(group, 'leased', formatLeased({ deadline, ready: formatReady({ ...ready, settled }), token }));
    await rename(join(group, 'ready', file), leased(0b1n));
    await link(leased(0b1n), leased(0b11n));
    // A bit flipped in record 3's payload: the part is damaged.
    const bytes = await readFile(leased(0b1n));
    let at = 0;
    for (let k = 0; k < 3; k++) at += 20 + bytes.readUInt32LE(at + 8) + bytes.readUInt32LE(at + 12);
    const payload3 = at + 20 + bytes.readUInt32LE(at + 8);
    bytes.writeUInt8(bytes.readUInt8(payload3) ^ 0x01, payload3);
    await writeFile(leased(0b1n), bytes);
    const report = await fsck(spool, { repair: true });
    expect(report.problems.map((p) => p.kind)).toContain('corrupt');
    expect(await readdir(join(group, 'leased')), 'no leftover split on its own later').toEqual([]);
    expect(await drain(q), 'every record is in the dead letter, none delivered as well').toEqual([]);
    await q.close();
  });

  it('bytes after the last record: every message is delivered, the bytes are one dead letter (review of the move-out)', async () => {
    for (const [label, extra] of [
      ['garbage', Buffer.from('23 bytes of plain junk!')],
      ['a valid record appended', null],
    ] as const) {
      const spool = await spoolPath();
      const { q, ids, path, bytes } = await oneEnvelope(spool);
      // A record of another envelope, whole and valid, is not one of this file's three either.
      const appended = extra ?? (await readFile(path)).subarray(0, 20 + bytes.readUInt32LE(8) + bytes.readUInt32LE(12));
      await writeFile(path, Buffer.concat([bytes, appended]));
      expect(
        (await drain(q)).map((m) => m.id),
        label,
      ).toEqual(ids);
      const dead = await q.deadLetters();
      expect(
        dead.map((d) => d.id),
        label,
      ).toEqual([`${ids[0]}.rest`]);
      expect(await readFile(join(spool, 'groups/default/dead', (dead[0] as { file: string }).file)), label).toEqual(appended);
      await q.close();
    }
  });

  it('bytes after the last record of an envelope in parts: every message is delivered (review of the move-out)', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none' });
    const ids = await q.pushMany(Array.from({ length: 33 }, (_, i) => i)); // parts of 32 and 1
    const [part] = await readyFiles(spool);
    const path = join(spool, 'groups/default/ready', (part as { file: string }).file);
    await writeFile(path, Buffer.concat([await readFile(path), Buffer.from('junk')]));
    expect((await drain(q)).map((m) => m.id)).toEqual(ids);
    expect(await leftovers(spool), 'a part reads past bytes that only a whole-file reader reports').toEqual([]);
    await q.close();
  });

  it('strict FIFO per producer: a push is never overtaken by a later push of the same delay', async () => {
    const q = await openQueue<string>(await spoolPath(), { durability: 'none' });
    // b's delay must outlast the push of c, or b is due first and rightly delivered before c
    // (8 ms here failed once in six runs of a busy machine).
    await Promise.all([q.push('a'), q.push('b', { delayMs: 300 })]);
    await q.push('c');
    await sleep(350);
    expect((await drain(q)).map((m) => m.data)).toEqual(['a', 'c', 'b']);
    await q.close();
  });

  it('a message that kills its consumer each time dies alone; the rest of its envelope is delivered', async () => {
    const spool = await spoolPath();
    const opts = { durability: 'none' as const, leaseMs: 200, maxAttempts: 3 };
    const p = await openQueue<string>(spool, opts);
    await p.pushMany(['poison', 'ok1', 'ok2']);
    await p.close();
    const delivered: Array<[string, number]> = [];
    for (let deaths = 0; deaths < 3; ) {
      const w = await openQueue<string>(spool, opts);
      const m = await w.pop({ timeoutMs: 1000 });
      if (m === null) throw new Error('nothing to pop');
      delivered.push([m.data, m.attempts]);
      if (m.data === 'poison') {
        deaths++; // the worker dies handling it: close() cannot give back an unsettled delivery
        await w.close();
        await sleep(300);
      } else {
        await m.ack();
        await w.close();
      }
    }
    const q = await openQueue<string>(spool, opts);
    expect((await q.deadLetters()).map((d) => [d.code, d.attempts])).toEqual([['lease-expired', 3]]);
    // ok1 and ok2 were split out of the envelope when its lease first expired, so charged one attempt
    const all = [...delivered, ...(await drain(q)).map((m): [string, number] => [m.data, m.attempts])];
    expect(all.filter(([data]) => data !== 'poison').sort()).toEqual([
      ['ok1', 2],
      ['ok2', 2],
    ]);
    expect(all.filter(([data]) => data === 'poison').map(([, attempts]) => attempts)).toEqual([1, 2, 3]);
    await q.close();
  });
});

/** SIGKILLs the consumer `child`, then drains `q` once the killed consumer's lease (400 ms) has expired. */
async function killThenDrain(child: ReturnType<typeof runFixture>, q: Parameters<typeof drain<number>>[0]) {
  child.proc.kill('SIGKILL');
  expect(await child.exited).toBe('SIGKILL');
  const got = await waitFor(async () => {
    await new Promise((r) => setTimeout(r, 450)); // the killed consumer's lease expires
    const all = await drain(q);
    return all.length > 0 ? all : null;
  });
  if (got === null) throw new Error('nothing came back');
  return got;
}

describe('a consumer killed part-way through an envelope', () => {
  it('SIGKILL after 3 acks of 10: the acks are in the ack file, not the name, and none comes back', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'fsync', leaseMs: 400 });
    const ids = await q.pushMany(Array.from({ length: 10 }, (_, i) => i));
    const child = runFixture('envelope-consumer.mjs', [spool, '3', '0', '400']);
    await child.line((l) => l === 'ready');
    const group = join(spool, 'groups/default');
    const [leased] = await readdir(join(group, 'leased'));
    expect(leased, 'no record settled in the name').toMatch(/=0a-0{32}~/);
    const token = (leased as string).split('~')[1] as string;
    const stamp = Buffer.from(token, 'hex'); // an ack is the token's 8 bytes at 8 × its record
    expect(await readFile(join(group, `.acks-${token}`)), 'records 0-2 acked in the file').toEqual(Buffer.concat([stamp, stamp, stamp]));
    expect(await q.stats()).toMatchObject({ leased: 7 });
    const got = await killThenDrain(child, q);
    expect(got.map((m) => [m.id, m.attempts])).toEqual(ids.slice(3).map((id) => [id, 2]));
    expect(await leftovers(spool), 'the reaper removed the ack file with the lease').toEqual([]);
    await q.close();
  });

  it('an expired lease whose ack file settles every record is removed by the split, and nothing comes back', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none', leaseMs: 100 });
    await q.pushMany([0, 1, 2]);
    for (let i = 0; i < 2; i++) await (await q.pop({ timeoutMs: 0 }))?.ack();
    const last = await q.pop({ timeoutMs: 0 });
    expect(last?.data).toBe(2);
    // As an ack of record 2 that raced a reaper's takeover leaves it: its byte written, the lease still there.
    const group = join(spool, 'groups/default');
    const [leased] = await readdir(join(group, 'leased'));
    const token = (leased as string).split('~')[1] as string;
    const stamp = Buffer.from(token, 'hex');
    await writeFile(join(group, `.acks-${token}`), Buffer.concat([stamp, stamp, stamp]));
    await new Promise((r) => setTimeout(r, 150));
    const other = await openQueue<number>(spool, { durability: 'none', leaseMs: 100 }); // its open reaps
    expect(await readdir(join(group, 'leased'))).toEqual([]);
    await new Promise((r) => setTimeout(r, 150));
    expect(await drain(other)).toEqual([]);
    expect(await leftovers(spool)).toEqual([]);
    await Promise.all([q.close(), other.close()]);
  });

  it("bytes in an ack file that are not the lease's token are not acks: zeros, ones, another token's", async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none', leaseMs: 100 });
    const ids = await q.pushMany([0, 1, 2, 3]);
    await q.pop({ timeoutMs: 0 }); // claims the envelope, never acks
    const group = join(spool, 'groups/default');
    const [leased] = await readdir(join(group, 'leased'));
    const token = (leased as string).split('~')[1] as string;
    // As a power loss can leave a file on ext4 without a journal: old blocks, other files' bytes.
    const other = Buffer.from('0123456789abcdef', 'hex');
    await writeFile(join(group, `.acks-${token}`), Buffer.concat([Buffer.alloc(8), Buffer.alloc(8, 1), other, Buffer.alloc(8, 0xff)]));
    await new Promise((r) => setTimeout(r, 150));
    const later = await openQueue<number>(spool, { durability: 'none' }); // its open reaps
    expect((await drain(later)).map((m) => [m.id, m.attempts])).toEqual(ids.map((id) => [id, 2]));
    expect(await leftovers(spool)).toEqual([]);
    await Promise.all([q.close(), later.close()]);
  });

  it('a FIFO planted at an ack file hangs neither the ack (it falls back to the name) nor the reaper', async () => {
    const spool = await spoolPath();
    // In a child (fixtures/fifo-ack.mjs, on dist/: `npm test` builds first): an open that blocked
    // would hang this process whole.
    const run = spawnSync(process.execPath, [join(FIXTURES, 'fifo-ack.mjs'), spool], { encoding: 'utf8', timeout: 20_000 });
    expect(run.signal, 'the child was not killed on its timeout: nothing hung').toBeNull();
    expect(run.status, run.stderr).toBe(0);
    const { ids, leased, afterAck, drained } = JSON.parse(run.stdout.trim().split('\n').pop() as string);
    expect(afterAck, 'record 0 settled in the name').toEqual([leased.replace(/=03-0{32}~/, `=03-${'0'.repeat(31)}1~`)]);
    expect(drained, 'records 1 and 2 come back after the reap, record 0 does not').toEqual(ids.slice(1).map((id: string) => [id, 2]));
    expect(await leftovers(spool)).toEqual([]);
  });

  it('close() gives back a part with an ack in the file as settled; an ack after close() keeps no spare', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none' });
    const ids = await q.pushMany([0, 1, 2]);
    await (await q.pop({ timeoutMs: 0 }))?.ack(); // record 0, into the file; 1 and 2 are held, not delivered
    await q.close(); // gives the part back: record 0 settled in its ready name
    expect(await ackFiles(spool)).toEqual([]);
    const again = await openQueue<number>(spool, { durability: 'none' });
    const one = await again.pop({ timeoutMs: 0 });
    const two = await again.pop({ timeoutMs: 0 });
    expect([one?.id, one?.attempts, two?.id, two?.attempts]).toEqual([ids[1], 1, ids[2], 1]);
    await again.close();
    await one?.ack(); // after close(): into the file
    await two?.ack(); // the last: the lease and its file go, and no spare is kept
    expect(await leftovers(spool)).toEqual([]);
    expect(await ackFiles(spool)).toEqual([]);
  });

  it('fsck --repair of an expired damaged lease dead-letters it with the acks of its ack file, and removes the file', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none', leaseMs: 100 });
    await q.pushMany([0, 1, 2]);
    await (await q.pop({ timeoutMs: 0 }))?.ack(); // record 0, into the file
    const group = join(spool, 'groups/default');
    const [leased] = await readdir(join(group, 'leased'));
    const path = join(group, 'leased', leased as string);
    const bytes = await readFile(path);
    bytes.writeUInt8((bytes.readUInt8(bytes.length - 1) as number) ^ 0x01, bytes.length - 1); // record 2's last byte
    await writeFile(path, bytes);
    await new Promise((r) => setTimeout(r, 150));
    const report = await fsck(spool, { repair: true });
    expect(report.problems.map((p) => p.kind)).toContain('corrupt');
    const dead = (await readdir(join(group, 'dead'))).filter((n) => !n.endsWith('.why'));
    expect(dead, 'record 0 settled in the dead letter name').toEqual([expect.stringMatching(new RegExp(`=03-${'0'.repeat(31)}1$`))]);
    expect(await ackFiles(spool)).toEqual([]);
    await q.close();
  });

  it('a consumer makes one ack file and renames it from part to part; close() removes it', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none' });
    await q.pushMany(Array.from({ length: 64 }, (_, i) => i)); // two parts of 32
    const group = join(spool, 'groups/default');
    const inodes = [];
    for (let part = 0; part < 2; part++) {
      await (await q.pop({ timeoutMs: 0 }))?.ack();
      const [leased] = await readdir(join(group, 'leased'));
      const token = (leased as string).split('~')[1] as string;
      expect(await ackFiles(spool), `part ${part}: its lease's file, and no spare`).toEqual([`.acks-${token}`]);
      inodes.push((await stat(join(group, `.acks-${token}`))).ino);
      // Record 32 * part acked under this lease's token; part 1's file still holds part 0's acks,
      // under part 0's token, which never count for part 1.
      const bytes = await readFile(join(group, `.acks-${token}`));
      const stamped = Array.from({ length: bytes.length / 8 }, (_, i) => i).filter((i) =>
        bytes.subarray(8 * i, 8 * i + 8).equals(Buffer.from(token, 'hex')),
      );
      expect(stamped).toEqual([32 * part]);
      for (let i = 1; i < 32; i++) await (await q.pop({ timeoutMs: 0 }))?.ack();
    }
    expect(inodes[1], 'the same file').toBe(inodes[0]);
    expect((await ackFiles(spool)).map((n) => n.replace(/[0-9a-f]{16}-[0-9]+$/, '…'))).toEqual(['.acks-spare-…']);
    expect(await leftovers(spool)).toEqual([]);
    await q.close();
    expect(await ackFiles(spool)).toEqual([]);
  });

  it('where the ack file cannot be written, an ack renames the lease with the bit set, as before', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'none', leaseMs: 300 });
    const ids = await q.pushMany([0, 1, 2, 3]);
    const first = await q.pop({ timeoutMs: 0 });
    const group = join(spool, 'groups/default');
    const [leased] = await readdir(join(group, 'leased'));
    const token = (leased as string).split('~')[1] as string;
    await mkdir(join(group, `.acks-${token}`)); // open() of the ack file now fails with EISDIR
    await first?.ack();
    const settled = (leased as string).replace(/=04-0{32}~/, `=04-${'0'.repeat(31)}1~`);
    expect(await readdir(join(group, 'leased')), 'record 0 settled in the name').toEqual([settled]);
    await rmdir(join(group, `.acks-${token}`));
    const second = await q.pop({ timeoutMs: 0 }); // record 1: delivered, never settled
    expect(second?.data).toBe(1);
    await new Promise((r) => setTimeout(r, 350));
    const other = await openQueue<number>(spool, { durability: 'none' });
    expect((await drain(other)).map((m) => [m.id, m.attempts])).toEqual(ids.slice(1).map((id) => [id, 2]));
    expect(await leftovers(spool)).toEqual([]);
    await Promise.all([q.close(), other.close()]);
  });

  it('SIGKILL after 3 acks and 2 nacks of 10: the acked never come back, the nacked once each, the rest with attempts 2', async () => {
    const spool = await spoolPath();
    const q = await openQueue<number>(spool, { durability: 'fsync', leaseMs: 400 });
    const ids = await q.pushMany(Array.from({ length: 10 }, (_, i) => i));
    expect((await readyFiles(spool)).map((f) => f.ids.length)).toEqual([10]);
    const child = runFixture('envelope-consumer.mjs', [spool, '3', '2', '400']);
    await child.line((l) => l === 'ready');
    const said = (verb: string) =>
      child
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith(`${verb} `))
        .map((l) => l.slice(verb.length + 1));
    const acked = said('acked');
    const nacked = said('nacked');
    const [holding] = said('holding');
    expect(acked).toEqual(ids.slice(0, 3));
    expect(nacked).toEqual(ids.slice(3, 5));
    expect(holding).toBe(ids[5]);
    // On disk now: the envelope, leased, with 5 of its 10 records settled in its name.
    const [leased] = await readdir(join(spool, 'groups/default/leased'));
    expect(leased).toMatch(/=0a-0{30}1f~/);
    const got = await killThenDrain(child, q);
    const byId = new Map(got.map((m) => [m.id, m]));
    expect(got).toHaveLength(7); // 2 nacked + 5 never settled
    for (const id of acked) expect(byId.has(id), `acked ${id} is never delivered again`).toBe(false);
    for (const id of nacked) expect(byId.get(id)?.attempts, `nacked ${id} comes back once, on its own`).toBe(2);
    for (const id of ids.slice(5)) expect(byId.get(id)?.attempts, `${id} comes back with the envelope`).toBe(2);
    expect(await leftovers(spool)).toEqual([]);
    await q.close();
  });
});
