/**
 * Publish/subscribe on a real file system without hard links. spec/fixtures/nolink-fs.py is a
 * FUSE pass-through to a backing directory whose link() fails with EPERM, as FAT's does; every
 * other operation (O_EXCL create, write, fdatasync, rename, mkdir, unlink, readdir, directory
 * fsync, utimens, …) reaches the backing file system. A fan-out publish must then fall back to
 * one complete copy per group (written and fdatasynced in tmp/, renamed in); the FUSE trace shows
 * the syscalls the kernel passed on, in the order they were served.
 *
 * Needs /dev/fuse, fusermount3 or root, and /usr/bin/python3 with fusepy
 * (Debian: apt-get install -y fuse3 python3-fusepy); skips with a printed reason without them.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { FIXTURES, listFiles, runFixture, waitFor } from './helpers.js';
import { drain, groupMessageFiles } from './pubsub-helpers.js';

const PYTHON = '/usr/bin/python3';
const FS = join(FIXTURES, 'nolink-fs.py');
const hasCommand = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;

function unavailable(): string | null {
  if (process.platform !== 'linux') return 'FUSE mounts are tested on Linux only';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing (no FUSE in this kernel or container)';
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  if (!hasCommand(PYTHON, FS, '--check')) return 'fusepy (or libfuse2) does not load: apt-get install -y fuse3 python3-fusepy';
  if (!hasCommand('fusermount3', '-V') && !isRoot) return 'fusermount3 is missing and this is not root: apt-get install -y fuse3';
  return null;
}
const skipped = unavailable();
if (skipped) console.log(`no-hardlinks.spec: skipped: ${skipped}`);

/** The type of the file system mounted at `path` (from /proc/mounts, octal escapes undone), or undefined. */
function isMounted(path: string): Promise<string | undefined> {
  return readFile('/proc/mounts', 'utf8').then(
    (text) =>
      text
        .split('\n')
        .map((line) => line.split(' '))
        .find((f) => f[1]?.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8))) === path)?.[2],
  );
}

/** Runs a command; resolves to its exit status (null if it could not run). */
function run(cmd: string, args: string[]): number | null {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status;
}

describe.skipIf(skipped !== null)('a spool on a file system without hard links (FUSE, link() → EPERM)', () => {
  let base: string;
  let backing: string;
  let mnt: string;
  let trace: string;
  let fuse: ChildProcess;
  let fuseErr = '';

  /** Lines of the FUSE trace about one spool (its name prefix removed): "<op> <path> [<path>]". */
  async function traced(spool: string): Promise<string[][]> {
    const prefix = `${spool.slice(mnt.length + 1)}/`;
    return (await readFile(trace, 'utf8'))
      .split('\n')
      .map((line) => line.split(' '))
      .filter((w) => w[1]?.startsWith(prefix))
      .map(([op, ...paths]) => [op as string, ...paths.map((p) => (p.startsWith(prefix) ? p.slice(prefix.length) : p))]);
  }

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'spoolq-nolink-'));
    backing = join(base, 'backing');
    mnt = join(base, 'mnt');
    trace = join(base, 'trace.log');
    await mkdir(backing);
    await mkdir(mnt);
    fuse = spawn(PYTHON, [FS, backing, mnt, trace], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    fuse.stdout?.on('data', (d) => {
      out += d;
    });
    fuse.stderr?.on('data', (d) => {
      fuseErr += d;
    });
    let exited: number | string | null = null;
    fuse.once('exit', (code, signal) => {
      exited = code ?? signal;
    });
    await waitFor(async () => {
      if (exited !== null) throw new Error(`nolink-fs.py exited (${exited}) before mounting:\n${fuseErr}`);
      return out.includes('mounted') && (await isMounted(mnt)) !== undefined;
    }, 10_000);
  });

  afterAll(async () => {
    if (!fuse) return;
    if ((await isMounted(mnt)) !== undefined && run('fusermount3', ['-u', mnt]) !== 0 && run('umount', [mnt]) !== 0) {
      run('umount', ['-l', mnt]); // busy: detach it; the daemon then exits
    }
    const gone = new Promise((resolve) => {
      if (fuse.exitCode !== null || fuse.signalCode !== null) resolve(true);
      else fuse.once('exit', resolve);
    });
    const timer = setTimeout(() => fuse.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
    if ((await isMounted(mnt)) !== undefined) run('umount', ['-l', mnt]); // killed while mounted
    if ((await isMounted(mnt)) === undefined) await rm(base, { recursive: true, force: true });
    expect(fuseErr, 'errors logged by nolink-fs.py').toBe('');
  });

  it('is a FUSE mount where link() fails with EPERM and the rest passes through', async () => {
    expect(await isMounted(mnt)).toBe('fuse.nolinkfs');
    const file = join(mnt, 'probe');
    await writeFile(file, 'probe');
    await expect(link(file, join(mnt, 'probe-link'))).rejects.toMatchObject({ code: 'EPERM' });
    expect(existsSync(join(mnt, 'probe-link'))).toBe(false);
    await rename(file, join(mnt, 'probe-2'));
    expect(await readFile(join(backing, 'probe-2'), 'utf8')).toBe('probe');
    await rm(join(mnt, 'probe-2'));
    expect(await readdir(backing)).toEqual([]);
  });

  it('fan-out copies: each group receives exactly its messages, every file its own inode', async () => {
    const spool = join(mnt, 'fanout');
    const a = await openQueue(spool, { group: 'A', topics: ['orders.*'] });
    const b = await openQueue(spool, { group: 'B', topics: ['#'] });
    const c = await openQueue(spool, { group: 'C', topics: ['orders.created'] });
    // One file per message, so the files below can be counted per delivery (an envelope takes
    // the same copy path: it is one file).
    const pub = await openQueue(spool, { group: null, envelopes: false });
    expect(pub.options.durability).toBe('fsync');

    const topics = ['orders.created', 'orders.deleted', 'orders.eu.created', 'invoices.paid', undefined, 'orders'];
    const sent: Array<{ data: { n: number; text: string }; topic: string | undefined }> = [];
    for (let n = 0; n < 20; n++) {
      const topic = topics[n % topics.length];
      // One large body: FUSE splits it into many WRITE requests (libfuse2's max_write is 4 KiB).
      const data = { n, text: n === 7 ? 'x'.repeat(200_000) : `message ${n}` };
      await pub.push(data, topic === undefined ? {} : { topic });
      sent.push({ data, topic });
    }
    const many = [20, 21, 22, 23].map((n) => ({ n, text: `many ${n}` }));
    await pub.pushMany(many, { topic: 'orders.created' });
    sent.push(...many.map((data) => ({ data, topic: 'orders.created' })));
    const single = [24, 25].map((n) => ({ n, text: `only B ${n}` }));
    await pub.pushMany(single, { topic: 'invoices.paid' }); // one group: renamed, no copy
    sent.push(...single.map((data) => ({ data, topic: 'invoices.paid' })));

    const expected = {
      A: sent.filter((s) => s.topic === 'orders.created' || s.topic === 'orders.deleted'),
      B: sent,
      C: sent.filter((s) => s.topic === 'orders.created'),
    };
    const deliveries = expected.A.length + expected.B.length + expected.C.length;

    // Nothing is left in tmp/: every original was renamed into its last group, every copy in.
    expect(await readdir(join(spool, 'tmp'))).toEqual([]);

    // The ready files: one per delivery, each a separate inode with one link, here and in the
    // backing directory; the copies of a message are byte-identical.
    const inodes = new Set<number>();
    const byId = new Map<string, Buffer[]>();
    for (const [group, want] of Object.entries(expected)) {
      const ready = join(spool, 'groups', group, 'ready');
      const files = await listFiles(ready);
      expect(files, `ready files of ${group}`).toHaveLength(want.length);
      for (const f of files) {
        const st = await lstat(join(ready, f));
        expect(st.isFile()).toBe(true);
        expect(st.nlink, `${group}/${f}`).toBe(1);
        expect((await lstat(join(backing, 'fanout', 'groups', group, 'ready', f))).nlink).toBe(1);
        inodes.add(st.ino);
        const id = f.split('/').pop()?.split('-')[2] as string;
        byId.set(id, [...(byId.get(id) ?? []), await readFile(join(ready, f))]);
      }
    }
    expect(inodes.size).toBe(deliveries);
    expect(byId.size).toBe(sent.length);
    for (const [id, copies] of byId) for (const copy of copies) expect(copy.equals(copies[0] as Buffer), id).toBe(true);

    // What the kernel passed on: link() was tried and refused; then every file renamed into a
    // ready/ bucket (the copies and each message's original) was created in tmp/ and fdatasynced
    // first, and the bucket directory was fsynced after.
    const ops = await traced(spool);
    const links = ops.filter(([op]) => op === 'link');
    expect(links.length).toBeGreaterThanOrEqual(1);
    for (const [, from, to] of links) {
      expect(from).toMatch(/^tmp\/[^/]+$/);
      expect(to).toMatch(/^groups\/(A|B|C)\/ready\//);
    }
    const intoReady = ops.filter(([op, , to]) => op === 'rename' && /^groups\/[^/]+\/ready\//.test(to ?? ''));
    expect(intoReady).toHaveLength(deliveries);
    const copies = intoReady.filter(([, from]) => /^tmp\/[^/]+\.\d+$/.test(from ?? ''));
    expect(copies).toHaveLength(deliveries - sent.length); // all but one delivery of each message is a copy
    for (const [, from, to] of intoReady) {
      const at = ops.findIndex(([op, path]) => op === 'rename' && path === from);
      const bucketSynced = ops.findIndex(([op, path], i) => i > at && op === 'fsyncdir' && path === dirname(to as string));
      expect(bucketSynced, `fsync of the bucket directory after ${to} was renamed in`).toBeGreaterThan(at);
      const created = ops.findIndex(([op, path]) => op === 'create' && path === from);
      const synced = ops.findIndex(([op, path]) => op === 'fdatasync' && path === from);
      expect(created, `create of ${from}`).toBeGreaterThanOrEqual(0);
      expect(synced, `fdatasync of ${from} after its create`).toBeGreaterThan(created);
      expect(synced, `fdatasync of ${from} before its rename`).toBeLessThan(at);
    }

    // Each group receives exactly its messages, in push order, with the right bodies and topics.
    expect(await drain(a)).toEqual(expected.A);
    expect(await drain(c)).toEqual(expected.C);
    expect(await drain(b)).toEqual(expected.B);

    // Drained clean: no message file in any group, nothing in tmp/, no .fuse_hidden leftovers.
    expect(await groupMessageFiles(spool)).toEqual([]);
    expect(await readdir(join(spool, 'tmp'))).toEqual([]);
    for (const q of [a, b, c]) expect(await q.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
    expect((await listFiles(backing)).filter((f) => f.includes('.fuse_hidden'))).toEqual([]);
    for (const q of [a, b, c, pub]) await q.close();
  });

  it('large pushes fan out as copies written from reused encode buffers, every copy intact (spare-buffers.ts)', async () => {
    const spool = join(mnt, 'spares');
    const groups = await Promise.all(['A', 'B', 'C'].map((group) => openQueue<Buffer>(spool, { group, codec: 'raw' })));
    // A file per push, so each file is written and copied from its push's own buffer (an
    // envelope of several pushes is a fresh concatenation); durable, so rounds last long enough
    // for the next pushes to be encoded while the copies of the last round are written.
    const pub = await openQueue<Buffer>(spool, { group: null, codec: 'raw', envelopes: false });
    const sent = new Map<string, Buffer>();
    const pushes: Array<Promise<void>> = [];
    for (let i = 0; i < 24; i++) {
      const data = randomBytes([65_536, 20_000, 150_000][i % 3] as number);
      pushes.push(pub.push(data).then((id) => void sent.set(id, data)));
      if (i % 3 === 2) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(pushes);
    expect(sent.size).toBe(24);
    for (const q of groups) {
      let delivered = 0;
      for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
        expect(Buffer.compare(m.data, sent.get(m.id) ?? Buffer.alloc(0)), `message ${m.id}`).toBe(0);
        await m.ack();
        delivered++;
      }
      expect(delivered).toBe(24);
      expect(await q.deadLetters()).toEqual([]);
    }
    for (const q of [...groups, pub]) await q.close();
  });

  it('a consumer in another process receives its copies, woken by the doorbell', async () => {
    const spool = join(mnt, 'procs');
    const orders = await openQueue(spool, { group: 'orders', topics: ['orders.*'] });
    await orders.close(); // consumed by the child
    const all = await openQueue(spool, { group: 'all', topics: ['#'] });
    const pub = await openQueue(spool, { group: null });

    const sent = Array.from({ length: 12 }, (_, n) => ({ data: { n }, topic: n % 3 === 0 ? 'misc' : `orders.e${n}` }));
    const want = sent.filter((s) => s.topic.startsWith('orders.'));
    const child = runFixture('nolink-consume.mjs', [spool, 'orders', String(want.length)]);
    await child.line((l) => l === 'ready');
    for (const s of sent) await pub.push(s.data, { topic: s.topic });

    // The child's reconciliation scan runs once a minute: only the doorbell (inotify on the
    // FUSE mount) can wake it in time.
    const result = JSON.parse(await child.line((l) => l.startsWith('{'), 25_000));
    expect(await child.exited).toBe(0);
    expect(result).toEqual({ got: want, timedOut: false });
    expect(await drain(all)).toEqual(sent);

    expect(await groupMessageFiles(spool)).toEqual([]);
    expect(await readdir(join(spool, 'tmp'))).toEqual([]);
    await all.close();
    await pub.close();
  });

  // Found in review: writing a message out of an envelope used link() only.
  it('a nack of a message of an envelope works without hard links: it comes back alone, the others are delivered', async () => {
    const spool = join(mnt, 'nack');
    const q = await openQueue(spool, { durability: 'none' });
    await q.pushMany(['a', 'b', 'c']);
    const m = await q.pop({ timeoutMs: 0 });
    await expect(m?.nack({ delayMs: 0 })).resolves.toBeUndefined();
    expect((await drain(q)).map((x) => String(x.data)).sort()).toEqual(['a', 'b', 'c']);
    await q.close();
  });

  it('an expired envelope is split without hard links, at open: every message comes back', async () => {
    const spool = join(mnt, 'reap');
    const opts = { durability: 'none' as const, leaseMs: 100 };
    const a = await openQueue(spool, opts);
    await a.pushMany(['a', 'b', 'c']);
    await a.pop({ timeoutMs: 0 }); // its consumer "dies"
    await new Promise((r) => setTimeout(r, 150));
    const b = await openQueue(spool, opts); // recovery reaps at open
    expect((await drain(b)).map((x) => String(x.data))).toEqual(['a', 'b', 'c']);
    await a.close();
    await b.close();
  });
});
