/**
 * Issue 3, item 5: "random truncations, flipped bytes, zero-length files, garbage and over-long
 * names, directories where files belong: every one is quarantined with a reason, never crashes a
 * consumer, never blocks the messages behind it."
 *
 * The property pushes N good messages, damages a random subset of their files in
 * groups/default/ready/<bucket>/, plants garbage entries (in buckets, in ready/ itself and in
 * leased/), then drains with pop({ timeoutMs: 0 }) until null and checks that:
 *   - every undamaged message is delivered exactly once, with its data, in priority/FIFO order;
 *   - no damaged or planted entry is delivered, and the consumer never throws;
 *   - every damaged or planted entry is one dead letter with a non-empty reason and the right
 *     code (corrupt, too-large or bad-name), and requeueDead() leaves them all;
 *   - nothing is left in ready/ (but empty buckets) or leased/, and symlink targets outside the
 *     spool are untouched.
 * The consumer is the handle that pushed, a fresh handle, or (in its own test) a child process.
 * The cases after the property are file types and names that the property does not generate,
 * one test each, so that one failure does not hide another.
 *
 * Reproduce a failure: SPOOLQ_FC_SEED=<seed> SPOOLQ_FC_PATH=<path> npx vitest run
 * spec/corruption.spec.ts -t '<test name>' (both are printed by fast-check); SPOOLQ_FC_RUNS
 * overrides the number of runs.
 */
import { execFileSync } from 'node:child_process';
import { appendFile, lstat, mkdir, readdir, readFile, readlink, rename, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { type DeadLetter, openQueue, type Queue } from '../lib/index.js';
import { HEADER_BYTES, MAX_ATTRIBUTE_BYTES } from '../lib/message-file.js';
import { formatLeased, parseBucket, parseLeased, parseReady } from '../lib/names.js';
import { cleanup, fcParams, runFixture, tempDir } from './helpers.js';

afterEach(cleanup);

const MAX_MESSAGE_BYTES = 1024;
/** Bytes to append so that a file is over what a consumer reads (maxMessageBytes + header + attributes). */
const OVERSIZE_PAD = MAX_MESSAGE_BYTES + HEADER_BYTES + MAX_ATTRIBUTE_BYTES + 1;
// One file per message: these specs damage files one by one (envelopes.spec.ts damages envelopes).
const OPTIONS = { durability: 'none', maxMessageBytes: MAX_MESSAGE_BYTES, envelopes: false } as const;

interface Data {
  i: number;
  text: string;
}

// ---------------------------------------------------------------------------------------------
// Names

const isSpoolqName = (n: string): boolean => parseReady(n) !== null || parseBucket(n) !== null || parseLeased(n) !== null;

/**
 * Legal on Linux (no '/', no NUL, at most 255 bytes) and not hidden: the library skips names that
 * start with '.' on purpose (ready-index.ts, leases.ts), so those are not garbage it must move.
 */
const isUsableName = (n: string): boolean =>
  n.length > 0 && !n.includes('/') && !n.includes('\0') && !n.startsWith('.') && Buffer.byteLength(n) <= 255 && !isSpoolqName(n);

/** Cuts a string at a code point boundary so that it fits in 255 bytes of UTF-8. */
function fit255(s: string): string {
  const points = [...s];
  while (Buffer.byteLength(points.join('')) > 255) points.pop();
  return points.join('');
}

type NameSpec = { garbage: string } | { nearMiss: number };

const garbageName = fc
  .oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
    fc.string({
      unit: fc.constantFrom(' ', 'a', 'Z', '0', '9', '-', '~', '_', '\t', '\n', '\\', '"', ':', '*', '?', 'é', '😀', '\u200b', '\u202e'),
      minLength: 1,
      maxLength: 40,
    }),
    fc.string({ unit: 'grapheme', minLength: 60, maxLength: 300 }).map(fit255), // often exactly at the limit
    fc.integer({ min: 200, max: 255 }).map((n) => 'n'.repeat(n)),
    fc.constant('garbage name with spaces'),
  )
  .filter(isUsableName);

const nameSpec: fc.Arbitrary<NameSpec> = fc.oneof(
  garbageName.map((garbage) => ({ garbage })),
  fc.nat({ max: 6 }).map((nearMiss) => ({ nearMiss })),
);

/** A name one edit away from a valid spoolq name (`base`), that the library must still refuse. */
function nearMiss(base: string, op: number): string {
  const variants = [`${base}.tmp`, `${base} `, `x${base}`, base.slice(0, -1), base.replaceAll('-', '_'), `${base}~`, base.toUpperCase()];
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(op + k) % variants.length] as string;
    if (isUsableName(v)) return v;
  }
  return `${base}.bad`;
}

const resolveName = (spec: NameSpec, base: string): string => ('garbage' in spec ? spec.garbage : nearMiss(base, spec.nearMiss));

// ---------------------------------------------------------------------------------------------
// Damage to a message file, and garbage planted next to them

type Damage =
  | { kind: 'truncate'; at: number }
  | { kind: 'zero' }
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'oversize' }
  | { kind: 'directory'; withChild: boolean }
  | { kind: 'symlink'; to: 'copy' | 'dir' | 'missing' }
  | { kind: 'rename'; name: NameSpec; flipped: boolean };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('zero' as const) }),
  fc.record({
    kind: fc.constant('flip' as const),
    // Half of the flips hit the fixed header (magic, version, codec, lengths, the CRC itself).
    at: fc.oneof(fc.integer({ min: 0, max: HEADER_BYTES - 1 }), fc.nat({ max: 4096 })),
    mask: fc.oneof(
      fc.integer({ min: 0, max: 7 }).map((b) => 1 << b),
      fc.integer({ min: 1, max: 255 }),
    ),
  }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('oversize' as const) }),
  fc.record({ kind: fc.constant('directory' as const), withChild: fc.boolean() }),
  fc.record({ kind: fc.constant('symlink' as const), to: fc.constantFrom('copy' as const, 'dir' as const, 'missing' as const) }),
  fc.record({ kind: fc.constant('rename' as const), name: nameSpec, flipped: fc.boolean() }),
);

interface Plant {
  where: 'bucket' | 'ready' | 'leased';
  bucket: number;
  type: 'file' | 'message-copy' | 'dir' | 'symlink';
  name: NameSpec;
  bytes: Uint8Array;
}

const plant: fc.Arbitrary<Plant> = fc.record({
  where: fc.constantFrom('bucket' as const, 'ready' as const, 'leased' as const),
  bucket: fc.nat(),
  type: fc.constantFrom('file' as const, 'message-copy' as const, 'dir' as const, 'symlink' as const),
  name: nameSpec,
  bytes: fc.uint8Array({ maxLength: 64 }),
});

type ConsumerKind = 'same' | 'fresh' | 'child';

interface Scenario {
  messages: Array<{ priority: number; text: string; damage: Damage | null }>;
  plants: Plant[];
  prefetch: number;
  consumer: ConsumerKind;
}

const scenario = (consumer: fc.Arbitrary<ConsumerKind>): fc.Arbitrary<Scenario> =>
  fc.record({
    messages: fc.array(
      fc.record({
        priority: fc.constantFrom(0, 2, 4, 9),
        text: fc.string({ maxLength: 40 }),
        damage: fc.option(damage, { freq: 2 }),
      }),
      { minLength: 1, maxLength: 20 },
    ),
    plants: fc.array(plant, { maxLength: 6 }),
    prefetch: fc.constantFrom(1, 2, 3, 1000),
    consumer,
  });

/** What must become of a damaged or planted entry. */
type Expected = { code: 'corrupt' | 'too-large'; id: string; what: string } | { code: 'bad-name'; name: string; what: string };

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

async function flipByte(path: string, at: number, mask: number): Promise<void> {
  const bytes = await readFile(path);
  const pos = at % bytes.length;
  bytes[pos] = (bytes[pos] as number) ^ mask;
  await writeFile(path, bytes);
}

/** Applies `d` to the message file at `path`; null when it could not be applied (name taken). */
async function applyDamage(path: string, id: string, d: Damage, outside: string): Promise<Expected | null> {
  const what = JSON.stringify(d, (_k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v));
  switch (d.kind) {
    case 'truncate':
      await truncate(path, d.at % (await lstat(path)).size);
      return { code: 'corrupt', id, what };
    case 'zero':
      await truncate(path, 0);
      return { code: 'corrupt', id, what };
    case 'flip':
      await flipByte(path, d.at, d.mask);
      return { code: 'corrupt', id, what };
    case 'append':
      await appendFile(path, d.bytes);
      return { code: 'corrupt', id, what };
    case 'oversize':
      await appendFile(path, Buffer.alloc(OVERSIZE_PAD, 0x61));
      return { code: 'too-large', id, what };
    case 'directory': {
      const content = await readFile(path);
      await unlink(path);
      await mkdir(path);
      if (d.withChild) await writeFile(join(path, 'inside'), content);
      return { code: 'corrupt', id, what };
    }
    case 'symlink': {
      // The target holds a valid copy of the message: following the link would deliver it.
      const content = await readFile(path);
      let target = join(outside, `${id}.missing`);
      if (d.to === 'copy') {
        target = join(outside, `${id}.copy`);
        await writeFile(target, content);
      } else if (d.to === 'dir') {
        target = join(outside, `${id}.dir`);
        await mkdir(target);
        await writeFile(join(target, basename(path)), content);
      }
      await unlink(path);
      await symlink(target, path);
      return { code: 'corrupt', id, what };
    }
    case 'rename': {
      const name = resolveName(d.name, basename(path));
      const to = join(dirname(path), name);
      if (await exists(to)) return null; // rename() would replace it
      if (d.flipped) await flipByte(path, 25, 0x01);
      await rename(path, to);
      return { code: 'bad-name', name, what };
    }
  }
}

async function applyPlant(
  p: Plant,
  paths: { ready: string; leased: string; buckets: string[]; sampleName: string; sample: Buffer; outside: string },
): Promise<Expected | null> {
  let dir: string;
  let base: string;
  if (p.where === 'bucket') {
    dir = paths.buckets[p.bucket % paths.buckets.length] as string;
    base = paths.sampleName;
  } else if (p.where === 'ready') {
    dir = paths.ready;
    base = basename(paths.buckets[p.bucket % paths.buckets.length] as string);
  } else {
    dir = paths.leased;
    base = formatLeased({ deadline: 0, ready: paths.sampleName, token: '0'.repeat(16) });
  }
  const name = resolveName(p.name, base);
  const path = join(dir, name);
  if (await exists(path)) return null;
  switch (p.type) {
    case 'file':
      await writeFile(path, p.bytes);
      break;
    case 'message-copy':
      await writeFile(path, paths.sample); // a valid message under a bad name: still not deliverable
      break;
    case 'dir':
      await mkdir(path);
      await writeFile(join(path, 'inside'), paths.sample);
      break;
    case 'symlink': {
      const target = join(paths.outside, 'planted-copy');
      if (!(await exists(target))) await writeFile(target, paths.sample);
      await symlink(target, path);
      break;
    }
  }
  return { code: 'bad-name', name, what: `planted ${p.type} in ${p.where}` };
}

/** Every entry below `dir` (not following links) with the content of regular files and link targets. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(e.parentPath, e.name);
    const key = path.slice(dir.length);
    if (e.isSymbolicLink()) out[key] = `-> ${await readlink(path)}`;
    else if (e.isFile()) out[key] = (await readFile(path)).toString('base64');
    else out[key] = 'dir';
  }
  return out;
}

/** What is left in ready/ (besides empty bucket directories) and in leased/, as readable lines. */
async function leftovers(group: string): Promise<string[]> {
  const left: string[] = [];
  const ready = join(group, 'ready');
  for (const raw of await readdir(ready, { encoding: 'buffer' })) {
    const name = raw.toString('utf8');
    const path = Buffer.concat([Buffer.from(`${ready}/`), raw]);
    const info = await lstat(path);
    if (!info.isDirectory() || !parseBucket(name)) {
      left.push(`ready/${JSON.stringify(name)} (${info.isSymbolicLink() ? 'symlink' : info.isDirectory() ? 'dir' : 'file'})`);
      continue;
    }
    for (const inner of await readdir(path, { encoding: 'buffer' })) left.push(`ready/${name}/${JSON.stringify(inner.toString('utf8'))}`);
  }
  for (const raw of await readdir(join(group, 'leased'), { encoding: 'buffer' }))
    left.push(`leased/${JSON.stringify(raw.toString('utf8'))}`);
  return left;
}

interface Delivery {
  id: string;
  data: Data;
  attempts: number;
}

/** Pops with timeoutMs 0 until null, acking each; never more than `limit` messages. */
async function drain(q: Queue<Data>, limit: number): Promise<{ delivered: Delivery[]; threw: unknown }> {
  const delivered: Delivery[] = [];
  try {
    for (;;) {
      const m = await q.pop({ timeoutMs: 0 });
      if (!m) return { delivered, threw: null };
      await m.ack();
      delivered.push({ id: m.id, data: m.data, attempts: m.attempts });
      if (delivered.length > limit) throw new Error(`the drain does not end: ${delivered.length} deliveries`);
    }
  } catch (error) {
    return { delivered, threw: error };
  }
}

/** Runs spec/fixtures/model-drain.mjs on `dir`; it must exit 0 on its own within `timeoutMs`. */
async function drainInChild(dir: string, prefetch: number, timeoutMs = 20_000): Promise<{ delivered: Delivery[]; threw: unknown }> {
  const child = runFixture('model-drain.mjs', [dir, String(prefetch), String(MAX_MESSAGE_BYTES)]);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const code = await Promise.race([child.exited, timedOut]);
  clearTimeout(timer);
  if (code === 'timeout') {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
  const lines = child.stdout().split('\n');
  const delivered = lines.filter((l) => l.startsWith('M ')).map((l) => JSON.parse(l.slice(2)) as Delivery);
  const errors = lines.filter((l) => l.startsWith('E '));
  const ok = code === 0 && errors.length === 0 && lines.includes('done');
  const threw = ok
    ? null
    : new Error(
        `the consumer process ${code === 'timeout' ? `did not finish within ${timeoutMs} ms (blocked)` : `exited with ${code}`}; stdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`,
      );
  return { delivered, threw };
}

async function runScenario(s: Scenario): Promise<void> {
  const root = await tempDir('spoolq-corrupt-');
  const dir = join(root, 'spool');
  const outside = join(root, 'outside');
  await mkdir(outside);
  const group = join(dir, 'groups/default');
  const ready = join(group, 'ready');
  const options = { ...OPTIONS, prefetch: s.prefetch };
  const handles: Queue<Data>[] = [];
  try {
    const producer = await openQueue<Data>(dir, options);
    handles.push(producer);
    const ids: string[] = [];
    for (const [i, m] of s.messages.entries()) ids.push(await producer.push({ i, text: m.text }, { priority: m.priority }));

    const pathOf = new Map<string, string>();
    for (const bucket of await readdir(ready)) {
      for (const name of await readdir(join(ready, bucket))) pathOf.set(parseReady(name)?.id as string, join(ready, bucket, name));
    }
    expect(pathOf.size).toBe(ids.length);
    const buckets = [...new Set(pathOf.values())].map((p) => dirname(p)).sort();
    const samplePath = pathOf.get(ids[0] as string) as string;
    const sample = await readFile(samplePath);

    const expected: Expected[] = [];
    const good: number[] = [];
    for (const [i, m] of s.messages.entries()) {
      const id = ids[i] as string;
      const outcome = m.damage ? await applyDamage(pathOf.get(id) as string, id, m.damage, outside) : null;
      if (outcome) expected.push(outcome);
      else good.push(i);
    }
    const paths = {
      ready,
      leased: join(group, 'leased'),
      buckets: [...new Set(buckets)],
      sampleName: basename(samplePath),
      sample,
      outside,
    };
    for (const p of s.plants) {
      const outcome = await applyPlant(p, paths);
      if (outcome) expected.push(outcome);
    }
    const outsideBefore = await snapshot(outside);

    // Drain.
    const limit = s.messages.length + s.plants.length + 10;
    let result: { delivered: Delivery[]; threw: unknown };
    if (s.consumer === 'same') {
      result = await drain(producer, limit);
    } else {
      await producer.close();
      if (s.consumer === 'fresh') {
        const consumer = await openQueue<Data>(dir, options);
        handles.push(consumer);
        result = await drain(consumer, limit);
      } else {
        result = await drainInChild(dir, s.prefetch);
      }
    }
    expect(result.threw, 'the consumer threw').toBeNull();

    // Every undamaged message once, with its data, first attempt, in priority then push order.
    const order = [...good].sort((a, b) => (s.messages[a]?.priority as number) - (s.messages[b]?.priority as number) || a - b);
    expect(result.delivered.map((d) => d.data.i)).toEqual(order);
    for (const d of result.delivered) {
      expect(d).toEqual({ id: ids[d.data.i], data: { i: d.data.i, text: s.messages[d.data.i]?.text }, attempts: 1 });
    }

    // Nothing left behind, checked before any other handle opens (opening runs recovery).
    expect(await leftovers(group)).toEqual([]);

    const inspector = await openQueue<Data>(dir, options);
    handles.push(inspector);
    const dead = await inspector.deadLetters();
    expect(matchDead(dead, expected)).toEqual([]);
    expect(await inspector.stats()).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: expected.length });
    // Quarantined files are evidence, not work.
    expect(await inspector.requeueDead()).toEqual([]);
    expect(await snapshot(outside)).toEqual(outsideBefore);
  } finally {
    for (const h of handles) await h.close();
  }
}

/** Pairs dead letters with expectations one to one; returns what does not pair, as readable lines. */
function matchDead(dead: DeadLetter[], expected: Expected[]): string[] {
  const problems: string[] = [];
  const left = [...dead];
  for (const e of expected) {
    const at = left.findIndex((d) =>
      e.code === 'bad-name' ? d.code === 'bad-name' && d.reason.endsWith(`: ${JSON.stringify(e.name)}`) : d.id === e.id,
    );
    if (at < 0) {
      problems.push(`no dead letter for ${e.code === 'bad-name' ? JSON.stringify(e.name) : e.id} (${e.what})`);
      continue;
    }
    const [d] = left.splice(at, 1) as [DeadLetter];
    if (d.code !== e.code) problems.push(`${d.id} (${e.what}): code ${d.code}, expected ${e.code}; reason: ${d.reason}`);
    // A lost reason file reads as code 'unknown' (checked above) and deadAt null.
    if (typeof d.reason !== 'string' || d.reason.trim() === '' || d.deadAt === null) {
      problems.push(`${d.id} (${e.what}): no reason recorded (${JSON.stringify(d.reason)})`);
    }
  }
  for (const d of left) problems.push(`unexpected dead letter ${d.file}: ${d.code} ${d.reason}`);
  return problems;
}

describe('corruption: every bad entry is quarantined with a reason, never delivered, never blocks', () => {
  it('random damage to message files and planted garbage, drained in this process', async () => {
    await fc.assert(
      fc.asyncProperty(scenario(fc.constantFrom('same' as const, 'fresh' as const)), (s) => runScenario(s)),
      fcParams(100),
    );
  }, 120_000);

  it('the same, drained by a consumer process that must not crash and must exit on its own', async () => {
    await fc.assert(
      fc.asyncProperty(scenario(fc.constant('child' as const)), (s) => runScenario(s)),
      fcParams(6),
    );
  }, 120_000);

  it('names that are not valid UTF-8 (random bytes) are quarantined too', async () => {
    const byteName = fc
      .uint8Array({ minLength: 1, maxLength: 60 })
      .map((bytes) => {
        const b = Buffer.from(bytes.map((x) => (x === 0 || x === 0x2f ? 0x80 : x)));
        if (b[0] === 0x2e) b[0] = 0xfe; // not hidden
        return Buffer.from(b.toString('utf8'), 'utf8').equals(b) ? Buffer.concat([b, Buffer.from([0xff])]) : b;
      })
      .filter((b) => b.length <= 255);
    const cases = fc.record({
      good: fc.integer({ min: 1, max: 5 }),
      plants: fc.uniqueArray(
        fc.record({ where: fc.constantFrom('bucket' as const, 'ready' as const, 'leased' as const), name: byteName }),
        {
          minLength: 1,
          maxLength: 4,
          selector: (p) => `${p.where}/${p.name.toString('hex')}`,
        },
      ),
    });
    await fc.assert(
      fc.asyncProperty(cases, async ({ good, plants }) => {
        const dir = join(await tempDir('spoolq-corrupt-'), 'spool');
        const group = join(dir, 'groups/default');
        const q = await openQueue<number>(dir, OPTIONS);
        try {
          await q.pushMany(Array.from({ length: good }, (_, i) => i));
          const [bucket] = await readdir(join(group, 'ready'));
          const dirs = { bucket: join(group, 'ready', bucket as string), ready: join(group, 'ready'), leased: join(group, 'leased') };
          for (const p of plants) await writeFile(Buffer.concat([Buffer.from(`${dirs[p.where]}/`), p.name]), 'junk');
          const delivered: number[] = [];
          for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
            delivered.push(m.data);
            await m.ack();
          }
          expect(delivered).toEqual(Array.from({ length: good }, (_, i) => i));
          expect(await leftovers(group)).toEqual([]);
          const dead = await q.deadLetters();
          expect(dead.map((d) => d.code)).toEqual(plants.map(() => 'bad-name'));
          expect(await q.stats()).toMatchObject({ ready: 0, leased: 0, dead: plants.length });
        } finally {
          await q.close();
        }
      }),
      {
        ...fcParams(20),
        // Different raw names that decode to the same string, next to a valid name that is that string.
        examples: [
          [
            {
              good: 2,
              plants: [
                { where: 'bucket', name: Buffer.from([0x80]) },
                { where: 'bucket', name: Buffer.from([0x81]) },
                { where: 'bucket', name: Buffer.from('\uFFFD') },
                { where: 'ready', name: Buffer.from([0xc3, 0x28]) },
                { where: 'leased', name: Buffer.from([0xff, 0xfe]) },
                { where: 'leased', name: Buffer.from([0xfe, 0xff]) },
              ],
            },
          ],
        ],
      },
    );
  }, 120_000);
});

describe('corruption: special files and misplaced entries', () => {
  /** Pushes a, b, c and returns the queue, the group path and the path of b's file. */
  async function threeMessages(): Promise<{ dir: string; group: string; q: Queue<string>; middle: string }> {
    const dir = join(await tempDir('spoolq-corrupt-'), 'spool');
    const group = join(dir, 'groups/default');
    const q = await openQueue<string>(dir, OPTIONS);
    await q.pushMany(['a', 'b', 'c']);
    const [bucket] = await readdir(join(group, 'ready'));
    const names = (await readdir(join(group, 'ready', bucket as string))).sort();
    return { dir, group, q, middle: join(group, 'ready', bucket as string, names[1] as string) };
  }

  async function drainAll(q: Queue<string>): Promise<string[]> {
    const got: string[] = [];
    for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
      got.push(m.data);
      await m.ack();
    }
    return got;
  }

  it('a FIFO where a message file belongs: the consumer process does not block on it', async () => {
    const { dir, group, q, middle } = await threeMessages();
    await q.close();
    await unlink(middle);
    execFileSync('mkfifo', [middle]);
    const { delivered, threw } = await drainInChild(dir, 1000, 5_000);
    expect(threw).toBeNull();
    expect(delivered.map((d) => d.data)).toEqual(['a', 'c']);
    expect(await leftovers(group)).toEqual([]);
    const inspector = await openQueue(dir, OPTIONS);
    expect((await inspector.deadLetters()).map((d) => d.code)).toEqual(['corrupt']);
    await inspector.close();
  });

  it('a socket where a message file belongs: pop does not throw, the socket is quarantined', async () => {
    const { group, q, middle } = await threeMessages();
    await unlink(middle);
    // Bound at a short path (unix socket paths are limited to 107 bytes), then moved into place.
    const short = join(await tempDir('sq-'), 's');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(short, resolve));
    try {
      await rename(short, middle);
      expect((await lstat(middle)).isSocket()).toBe(true);
      expect(await drainAll(q)).toEqual(['a', 'c']);
      expect(await leftovers(group)).toEqual([]);
      expect((await q.deadLetters()).map((d) => d.code)).toEqual(['corrupt']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await q.close();
    }
  });

  it('a regular file where a bucket directory belongs is quarantined, not left in ready/', async () => {
    const { group, q } = await threeMessages();
    await writeFile(join(group, 'ready', '4-0000000002'), 'not a bucket');
    try {
      expect(await drainAll(q)).toEqual(['a', 'b', 'c']);
      expect(await leftovers(group)).toEqual([]);
      expect(await q.deadLetters()).toHaveLength(1);
    } finally {
      await q.close();
    }
  });

  it('a symlink where a bucket directory belongs is not followed: nothing outside the spool is delivered or moved', async () => {
    const { group, q, middle } = await threeMessages();
    const outside = await tempDir('spoolq-outside-');
    // A valid message outside the spool, reachable only through the link.
    const copy = basename(middle).replace(/-0001$/, '-0002');
    await writeFile(join(outside, copy), await readFile(middle));
    await symlink(outside, join(group, 'ready', '4-0000000003'));
    try {
      expect(await drainAll(q)).toEqual(['a', 'b', 'c']);
      expect(await readdir(outside)).toEqual([copy]);
      expect(await leftovers(group)).toEqual([]);
      expect(await q.deadLetters()).toHaveLength(1);
    } finally {
      await q.close();
    }
  });
});
