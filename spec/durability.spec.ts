/**
 * Durable publish (design.md, "Publish" and "Group commit"):
 *   - with durability 'fsync' the syscall order is write tmp (O_EXCL) → fdatasync → rename/link
 *     into ready/ → fsync of every directory touched → resolve, checked on a real strace of a
 *     child process (skipped, with the reason printed, where strace is missing);
 *   - with durability 'none' there is no fdatasync or fsync, and the order is otherwise the same;
 *   - concurrent pushes share directory fsyncs, and pushMany is one round of them;
 *   - a resolved push survives SIGKILL of its process and a reopen, and is delivered once.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../dist/index.js';
import { type Child, cleanup, FIXTURES, listFiles, runFixture, spoolPath, tempDir, waitFor } from './helpers.js';
import { type Call, fdPath, ok, parseTrace, strings } from './strace.js';
import { checkSpoolFile } from './validate-file.js';

const run = promisify(execFile);

const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
if (!hasStrace) console.log('durability.spec: strace is not on PATH, so the syscall-order tests are skipped');

afterAll(cleanup);

// ---------------------------------------------------------------------------------------------
// strace output (parsed by strace.ts)

const PLACE = ['rename', 'renameat', 'renameat2', 'link', 'linkat'];
const SYNC = ['fsync', 'fdatasync'];
const isBucket = (path: string | undefined) => path !== undefined && /\/groups\/[^/]+\/ready\/[0-9]-[0-9a-f]{10}$/.test(path);

interface Traced {
  spool: string;
  stdout: string;
  /** The calls after the fixture wrote "BEGIN" to stdout: the publish, then close. */
  calls: Call[];
  /** Every call of the run, setup included. */
  all: Call[];
}

async function traced(
  mode: 'one' | 'two-groups' | 'concurrent' | 'concurrent-files' | 'many' | 'nack-envelope',
  durability: 'fsync' | 'none',
): Promise<Traced> {
  const spool = await spoolPath();
  const out = join(await tempDir('spoolq-strace-'), 'trace');
  const { stdout } = await run(
    'strace',
    [
      '-f',
      '-qq',
      '-y',
      '-e',
      'trace=openat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat,mkdir,mkdirat',
      '-o',
      out,
      process.execPath,
      join(FIXTURES, 'durable-push.mjs'),
      spool,
      mode,
      durability,
    ],
    { timeout: 30_000 },
  );
  expect(stdout).toMatch(/END\n$/);
  const all = parseTrace(await readFile(out, 'utf8'));
  const begin = all.find((c) => c.name === 'write' && /^1<[^>]*>, "BEGIN\\n"/.test(c.args));
  expect(begin, 'the write of BEGIN to stdout is in the trace').toBeDefined();
  return { spool, stdout, all, calls: all.filter((c) => c.start > (begin as Call).end) };
}

const idsOf = (stdout: string): string[] => (/^ID (.*)$/m.exec(stdout)?.[1] ?? '').split(' ').filter(Boolean);

/** The write of the resolved ids to stdout. */
function idWrite(t: Traced): Call {
  const call = t.calls.find((c) => c.name === 'write' && /^1<[^>]*>, "ID /.test(c.args));
  expect(call, 'the write of the resolved id to stdout is in the trace').toBeDefined();
  return call as Call;
}

/**
 * Checks the syscall order of the publish of message `id` and returns where it was placed:
 * openat(tmp, O_CREAT|O_EXCL) → write(s) of every byte → fdatasync (exactly once, only with
 * sync) → rename/link into each group's ready bucket → fsync of each bucket after its
 * placement (with sync) → the write of the resolved id to stdout.
 */
async function checkPublish(t: Traced, id: string, sync: boolean): Promise<Call[]> {
  const resolved = idWrite(t);
  // The names that deliver the message: its own file, or the part of an envelope that holds it.
  const finals: string[] = [];
  const inodes = new Map<string, number>();
  for (const f of await listFiles(join(t.spool, 'groups'))) {
    if (!/^[^/]+\/ready\/[^/]+\/[^/]+$/.test(f)) continue;
    const path = join(t.spool, 'groups', f);
    inodes.set(path, (await stat(path)).ino);
    if (checkSpoolFile(basename(f), await readFile(path)).some((m) => m.id === id)) finals.push(path);
  }
  const groups = (await readdir(join(t.spool, 'groups'))).filter((g) => !g.startsWith('.'));
  expect(finals.length, `message ${id} is in ready/ of every group (${groups.join(', ')}), once`).toBe(groups.length);
  // Every name of its file: those of the other parts of an envelope too (hard links of one inode).
  const names = [...inodes].filter(([, ino]) => ino === inodes.get(finals[0] as string)).map(([path]) => path);
  // The tmp file is named by the id of the file's first message.
  const bytes = await readFile(finals[0] as string);
  const tmp = join(t.spool, 'tmp', JSON.parse(bytes.toString('utf8', 20, 20 + bytes.readUInt32LE(8))).id);

  const open = t.calls.find((c) => c.name === 'openat' && strings(c)[0] === tmp);
  expect(open, `openat of ${tmp}`).toBeDefined();
  const opened = open as Call;
  expect(opened.args).toMatch(/O_CREAT/);
  expect(opened.args).toMatch(/O_EXCL/);
  expect(ok(opened), `openat of ${tmp} succeeded: ${opened.ret}`).toBe(true);

  const writes = t.calls.filter((c) => (c.name === 'write' || c.name === 'pwrite64') && fdPath(c) === tmp);
  expect(writes.length).toBeGreaterThan(0);
  for (const w of writes) expect(w.start).toBeGreaterThan(opened.end);
  const written = writes.reduce((sum, w) => sum + Number.parseInt(w.ret, 10), 0);
  expect(written, 'every byte of the file was written').toBe((await stat(finals[0] as string)).size);
  const lastWrite = Math.max(...writes.map((w) => w.end));

  const syncs = t.calls.filter((c) => SYNC.includes(c.name) && fdPath(c) === tmp);
  let dataSynced = lastWrite;
  if (sync) {
    expect(
      syncs.map((c) => c.name),
      'one fdatasync of the tmp file, never retried',
    ).toEqual(['fdatasync']);
    const fdatasync = syncs[0] as Call;
    expect(ok(fdatasync)).toBe(true);
    expect(fdatasync.start, 'fdatasync after the last write').toBeGreaterThan(lastWrite);
    dataSynced = fdatasync.end;
  } else {
    expect(syncs).toEqual([]);
  }

  const placed = t.calls.filter((c) => PLACE.includes(c.name) && strings(c)[0] === tmp && ok(c));
  expect(placed.map((c) => strings(c)[1]).sort(), 'tmp is renamed or linked to its final names').toEqual(names.sort());
  for (const p of placed) {
    expect(p.start, `${p.name} into ready/ after the file is complete${sync ? ' and fdatasynced' : ''}`).toBeGreaterThan(dataSynced);
    expect(p.end, `${p.name} before the push resolved`).toBeLessThan(resolved.start);
    if (!sync) continue;
    const bucket = dirname(strings(p)[1] as string);
    const dirSync = t.calls.find((c) => c.name === 'fsync' && fdPath(c) === bucket && c.start > p.end && ok(c));
    expect(dirSync, `fsync of ${bucket} after the ${p.name} into it`).toBeDefined();
    expect((dirSync as Call).end, `fsync of ${bucket} before the push resolved`).toBeLessThan(resolved.start);
    // A bucket made by this publish: its parent (ready/) is fsynced too, before the push resolves.
    const made = t.calls.find((c) => (c.name === 'mkdir' || c.name === 'mkdirat') && strings(c)[0] === bucket && ok(c));
    if (made) {
      const parentSync = t.calls.find((c) => c.name === 'fsync' && fdPath(c) === dirname(bucket) && c.start > made.end);
      expect(parentSync, `fsync of ${dirname(bucket)} after the mkdir of a new bucket`).toBeDefined();
      expect((parentSync as Call).end).toBeLessThan(resolved.start);
    }
  }
  return placed;
}

describe.skipIf(!hasStrace)('publish syscall order (strace)', () => {
  it("durability 'fsync', one group: O_EXCL tmp → write → fdatasync → rename → fsync of the bucket → resolve", async () => {
    const t = await traced('one', 'fsync');
    const [id] = idsOf(t.stdout);
    const placed = await checkPublish(t, id as string, true);
    expect(placed).toHaveLength(1);
    expect(placed[0]?.name).toMatch(/^rename/);
  });

  it("durability 'fsync', two groups: link into the first, rename into the last, fsync each bucket, then resolve", async () => {
    const t = await traced('two-groups', 'fsync');
    const [id] = idsOf(t.stdout);
    const placed = await checkPublish(t, id as string, true);
    // One inode, a name per group: a hard link for every group but the last, which takes the
    // tmp name itself (so no unlink of tmp/<id> is needed).
    expect(placed.map((p) => p.name.replace(/at2?$/, ''))).toEqual(['link', 'rename']);
    expect(new Set(placed.map((p) => strings(p)[1]?.split('/groups/')[1]?.split('/')[0]))).toEqual(new Set(['b', 'default']));
    const tmp = join(t.spool, 'tmp', id as string);
    const unlinked = t.calls.find((c) => (c.name === 'unlink' || c.name === 'unlinkat') && strings(c).includes(tmp));
    expect(unlinked, 'tmp/<id> is renamed away, never unlinked').toBeUndefined();
  });

  it("durability 'none': the same order without any fdatasync or fsync", async () => {
    const t = await traced('one', 'none');
    const [id] = idsOf(t.stdout);
    expect(t.all.filter((c) => SYNC.includes(c.name)).map((c) => `${c.name}(${fdPath(c)})`)).toEqual([]);
    const placed = await checkPublish(t, id as string, false);
    expect(placed).toHaveLength(1);
  });

  it('16 concurrent pushes share one envelope file and its directory fsync (group commit)', async () => {
    const t = await traced('concurrent', 'fsync');
    const ids = idsOf(t.stdout);
    expect(ids).toHaveLength(16);
    const files = new Set<string>();
    for (const id of ids) for (const p of await checkPublish(t, id, true)) files.add(strings(p)[1] as string);
    // The 16 are called in one synchronous burst, so they make one round: one envelope.
    expect(files.size, 'one file for the 16 messages').toBe(1);
    expect(
      t.calls.filter((c) => c.name === 'fdatasync'),
      'one fdatasync per file written',
    ).toHaveLength(files.size);
    const bucketSyncs = t.calls.filter((c) => c.name === 'fsync' && isBucket(fdPath(c)));
    expect(bucketSyncs, 'one directory fsync for the round').toHaveLength(1);
  });

  it('16 concurrent pushes with envelopes: false share their directory fsyncs (group commit)', async () => {
    const t = await traced('concurrent-files', 'fsync');
    const ids = idsOf(t.stdout);
    expect(ids).toHaveLength(16);
    for (const id of ids) await checkPublish(t, id, true);
    expect(t.calls.filter((c) => c.name === 'fdatasync')).toHaveLength(16);
    const bucketSyncs = t.calls.filter((c) => c.name === 'fsync' && isBucket(fdPath(c)));
    expect(bucketSyncs, 'one round: the 16 files, then one fsync of their bucket').toHaveLength(1);
  });

  it('pushMany of 100 messages is one commit: one fsync per bucket, after every rename', async () => {
    const t = await traced('many', 'fsync');
    const ids = idsOf(t.stdout);
    expect(ids).toHaveLength(100);
    const placed: Call[] = [];
    for (const id of ids) placed.push(...(await checkPublish(t, id, true)));
    const files = new Set(placed.map((p) => strings(p)[1] as string));
    expect(files.size, 'the 100 messages share one envelope file, under a name per part of 32').toBe(4);
    const calls = [...new Set(placed)].sort((a, b) => a.start - b.start);
    expect(
      calls.map((c) => c.name.replace(/at2?$/, '')),
      'a link per part, then the rename of the last',
    ).toEqual(['link', 'link', 'link', 'rename']);
    expect(t.calls.filter((c) => c.name === 'fdatasync')).toHaveLength(1);
    const buckets = new Set(placed.map((p) => dirname(strings(p)[1] as string)));
    const bucketSyncs = t.calls.filter((c) => c.name === 'fsync' && isBucket(fdPath(c)));
    expect(bucketSyncs.map((c) => fdPath(c)).sort(), 'each bucket touched is fsynced exactly once').toEqual([...buckets].sort());
    const lastPlaced = Math.max(...placed.map((p) => p.end));
    for (const s of bucketSyncs) expect(s.start, 'the commit starts after the last rename').toBeGreaterThan(lastPlaced);
  });
});

describe.skipIf(!hasStrace)('a nack takes a message out of its envelope durably (strace)', () => {
  it("durability 'fsync': the lease is linked to its next name, leased/ fsynced, the lease renamed to the record's own name, its bucket and leased/ fsynced", async () => {
    const t = await traced('nack-envelope', 'fsync');
    const nacked = t.calls.find((c) => c.name === 'write' && /^1<[^>]*>, "NACKED /.test(c.args));
    expect(nacked, 'the write of NACKED to stdout is in the trace').toBeDefined();
    const inLeased = (path: string | undefined) => /\/groups\/default\/leased\/[^/]+$/.test(path ?? '');
    // No bytes are copied: nothing is created in tmp/ for the nack.
    const copies = t.calls.filter((c) => c.name === 'openat' && /\/tmp\/[0-9a-f]{24}\.[0-9a-f]{16}$/.test(strings(c)[0] ?? ''));
    expect(copies, 'no copy of the record in tmp/').toEqual([]);
    // 1. The link of the lease to its next name: the same token, the nacked record's bit set.
    const link = t.calls.find((c) => /^link/.test(c.name) && inLeased(strings(c)[0]) && inLeased(strings(c)[1]) && ok(c));
    expect(link, 'the lease linked to its next name in leased/').toBeDefined();
    const [lease, rest] = strings(link as Call) as [string, string];
    expect(rest.slice(-17), 'the same token').toBe(lease.slice(-17));
    expect(rest, 'record 0 settled in the rest').toMatch(/=03-0{31}1~/);
    // 2. leased/ fsynced after the link, so that the link is durable before the rename.
    const leasedSync = t.calls.find((c) => c.name === 'fsync' && fdPath(c) === dirname(lease) && c.start > (link as Call).end && ok(c));
    expect(leasedSync, `fsync of ${dirname(lease)} after the link`).toBeDefined();
    // 3. The lease itself renamed to record 0's own name in a ready/ bucket: attempt 2, only record 0 unsettled.
    const rename = t.calls.find((c) => /^rename/.test(c.name) && strings(c)[0] === lease && ok(c));
    expect(rename, 'the lease renamed into ready/').toBeDefined();
    const target = strings(rename as Call)[1] as string;
    expect(target).toMatch(/\/groups\/default\/ready\/4-[0-9a-f]{10}\/4-[0-9a-f]{12}-[0-9a-f]{24}-0002=03-0{31}6$/);
    expect((rename as Call).start, 'renamed after leased/ is fsynced').toBeGreaterThan((leasedSync as Call).end);
    // 4. Its bucket fsynced after the rename, before the nack resolved.
    const bucketSync = t.calls.find((c) => c.name === 'fsync' && fdPath(c) === dirname(target) && c.start > (rename as Call).end && ok(c));
    expect(bucketSync, `fsync of ${dirname(target)} after the rename`).toBeDefined();
    expect((bucketSync as Call).end, 'durable before the nack resolved').toBeLessThan((nacked as Call).start);
    // 5. And leased/, the rename's other side, so that a power loss cannot leave the record in both.
    const sourceSync = t.calls.find((c) => c.name === 'fsync' && fdPath(c) === dirname(lease) && c.start > (rename as Call).end && ok(c));
    expect(sourceSync, `fsync of ${dirname(lease)} after the rename`).toBeDefined();
    expect((sourceSync as Call).end, 'durable before the nack resolved').toBeLessThan((nacked as Call).start);
  });
});

// ---------------------------------------------------------------------------------------------
// SIGKILL survival

describe('a resolved push survives SIGKILL', () => {
  const children: Child[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  });

  it('every id printed after its push resolved is delivered exactly once after a reopen', async () => {
    const spool = await spoolPath();
    const printed = new Map<string, number>();
    for (const style of ['serial', 'parallel', 'batch', 'serial']) {
      const child = runFixture('durable-loop.mjs', [spool, style]);
      children.push(child);
      const closed = new Promise((resolve) => child.proc.once('close', resolve));
      await child.line((l) => l === 'START');
      // Kill it in full flight: after some pushes resolved, at a random point of the next ones.
      await waitFor(
        () =>
          child
            .stdout()
            .split('\n')
            .filter((l) => l.startsWith('OK ')).length >= 20,
        20_000,
        2,
      );
      await new Promise((r) => setTimeout(r, Math.random() * 30));
      child.proc.kill('SIGKILL');
      expect(await child.exited, child.stderr()).toBe('SIGKILL');
      await closed; // every byte it wrote to stdout has been read
      for (const line of child.stdout().split('\n').slice(0, -1)) {
        const m = /^OK ([0-9a-f]{24}) (\d+)$/.exec(line);
        if (m) printed.set(m[1] as string, Number(m[2]));
      }
    }
    expect(printed.size).toBeGreaterThanOrEqual(80);

    const q = await openQueue<{ seq: number }>(spool, { durability: 'fsync' });
    const delivered = new Map<string, number>();
    try {
      for (let m = await q.pop({ timeoutMs: 0 }); m !== null; m = await q.pop({ timeoutMs: 0 })) {
        delivered.set(m.id, (delivered.get(m.id) ?? 0) + 1);
        const seq = printed.get(m.id);
        if (seq !== undefined) expect(m.data.seq, `payload of ${m.id}`).toBe(seq);
        await m.ack();
      }
    } finally {
      await q.close();
    }
    const missing = [...printed.keys()].filter((id) => !delivered.has(id));
    expect(missing, 'resolved pushes missing after SIGKILL and reopen').toEqual([]);
    expect(
      [...delivered].filter(([, n]) => n > 1),
      'delivered twice',
    ).toEqual([]);
    console.log(
      `durability.spec: 4 SIGKILLs, ${printed.size} resolved pushes all delivered once (${delivered.size - printed.size} more were committed but not yet reported)`,
    );
  });
});
