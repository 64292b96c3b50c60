/**
 * Nothing partial is ever visible (design.md, "Publish" and "Guarantees"): a producer killed with
 * SIGKILL at random points, 200 times, leaves no visible message that fails its length or CRC, and
 * every push that resolved before the kill is in ready/ of every group, byte for byte.
 *
 * Visible files are checked by spec/validate-file.ts, a validator written from the format documented
 * in lib/message-file.ts, not by the library's own decoder, so it is a second opinion. The iterations
 * alternate durability 'fsync' and 'none' (a process kill loses no page cache, so both must hold),
 * and vary message sizes (up to 2 MiB, so kills land mid-write), concurrency, pushMany and fan-out.
 * Half the kills come 5-60 ms after the child opened the queue (first bucket, first writes), half
 * 0-60 ms after its first push resolved (in full flight).
 *
 * Choices are drawn from a seeded generator: set SPOOLQ_CRASH_SEED to replay a run's choices
 * (the kill timing itself stays real).
 */
import { readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../dist/index.js';
import { type Child, cleanup, seededRandom as generator, runFixture, spoolPath } from './helpers.js';
import { BUCKET_NAME, checkSpoolFile } from './validate-file.js';

const KILLS = 200;
/** Children run this many at a time, each on its own spool. */
const LANES = 4;

const SEED = Number(process.env.SPOOLQ_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

afterAll(cleanup);

// ---------------------------------------------------------------------------------------------
// Visible message files, checked by the independent validator of validate-file.ts

interface Valid {
  id: string;
  length: number;
  crc: string;
}

/** Checks one visible message file or envelope of the raw fixture; throws with the reason when it is not complete. */
function validate(name: string, file: Buffer): Valid[] {
  return checkSpoolFile(name, file).map(({ id, codec, attributes, payload }) => {
    if (codec !== 1) throw new Error(`codec ${codec}, the fixture writes raw (1)`);
    if (typeof attributes.enqueuedAt !== 'number') throw new Error('attributes have no enqueuedAt');
    return { id, length: payload.length, crc: crc32(payload).toString(16) };
  });
}

interface SpoolCheck {
  /** Per group: the valid visible messages by id. */
  groups: Map<string, Map<string, Valid>>;
  /** Visible files checked. */
  files: number;
  /** Files left in tmp/ (absolute paths). */
  orphans: string[];
}

/** Walks groups/*\/ready/*\/* and validates every visible file; leased/ and dead/ must be empty. */
async function checkSpool(spool: string): Promise<SpoolCheck> {
  const result: SpoolCheck = { groups: new Map(), files: 0, orphans: [] };
  for (const group of (await readdir(join(spool, 'groups'))).filter((n) => !n.startsWith('.routes-'))) {
    const visible = new Map<string, Valid>();
    result.groups.set(group, visible);
    const ready = join(spool, 'groups', group, 'ready');
    for (const bucket of await readdir(ready)) {
      expect(bucket, `a bucket directory in ${ready}`).toMatch(BUCKET_NAME);
      for (const name of await readdir(join(ready, bucket))) {
        const path = join(ready, bucket, name);
        let valid: Valid[];
        try {
          valid = validate(name, await readFile(path));
        } catch (error) {
          throw new Error(`partial or corrupt visible message ${path} (${(await stat(path)).size} bytes): ${(error as Error).message}`);
        }
        for (const message of valid) {
          expect(visible.has(message.id), `message ${message.id} appears once in ${group}`).toBe(false);
          visible.set(message.id, message);
        }
        result.files++;
      }
    }
    expect(await readdir(join(spool, 'groups', group, 'leased')), 'nothing is leased').toEqual([]);
    expect(await readdir(join(spool, 'groups', group, 'dead')), 'nothing is dead').toEqual([]);
  }
  for (const entry of await readdir(join(spool, 'tmp'), { withFileTypes: true })) {
    if (entry.isFile()) result.orphans.push(join(spool, 'tmp', entry.name));
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// One kill

interface Config {
  durability: 'fsync' | 'none';
  sizes: 'small' | 'mixed' | 'large';
  parallel: number;
  batch: boolean;
  groups: 1 | 2;
  /** The kill timer starts when the child has opened the queue, or when its first push resolved. */
  from: 'start' | 'first-push';
  killAfterMs: number;
}

const describeConfig = (c: Config) =>
  `durability ${c.durability}, sizes ${c.sizes}, ${c.parallel} loop(s)${c.batch ? ' of pushMany' : ''}, ${c.groups} group(s), kill ${c.killAfterMs} ms after ${c.from} (seed ${SEED})`;

const running = new Set<Child>();

/** Starts the pusher, kills it `killAfterMs` after it started pushing, returns what it had resolved. */
async function crashOnce(spool: string, c: Config): Promise<Map<string, Omit<Valid, 'id'>>> {
  const child = runFixture('crash-pusher.mjs', [spool, c.durability, c.sizes, String(c.parallel), c.batch ? '1' : '0', String(c.groups)]);
  running.add(child);
  try {
    const closed = new Promise((resolve) => child.proc.once('close', resolve));
    await child.line((l) => (c.from === 'start' ? l === 'START' : l.startsWith('OK ')));
    await new Promise((r) => setTimeout(r, c.killAfterMs));
    child.proc.kill('SIGKILL');
    expect(await child.exited, `the pusher died by the SIGKILL, not by itself: ${child.stderr()}`).toBe('SIGKILL');
    await closed; // every line it wrote is read
  } finally {
    running.delete(child);
  }
  const resolved = new Map<string, Omit<Valid, 'id'>>();
  for (const line of child.stdout().split('\n').slice(0, -1)) {
    const m = /^OK ([0-9a-f]{24}) (\d+) ([0-9a-f]+)$/.exec(line);
    if (m) resolved.set(m[1] as string, { length: Number(m[2]), crc: m[3] as string });
    else expect(line, 'a line of the pusher').toBe('START');
  }
  return resolved;
}

/** Every resolved push is visible in every group, with the payload that was pushed. */
function expectResolvedVisible(check: SpoolCheck, resolved: Map<string, Omit<Valid, 'id'>>, groups: number, context: string): void {
  expect(check.groups.size, `${context}: groups`).toBe(groups);
  for (const [group, visible] of check.groups) {
    const missing = [...resolved.keys()].filter((id) => !visible.has(id));
    expect(missing, `${context}: resolved pushes missing from ${group}`).toEqual([]);
    for (const [id, pushed] of resolved) {
      const { length, crc } = visible.get(id) as Valid;
      expect({ length, crc }, `${context}: payload of ${id} in ${group}`).toEqual(pushed);
    }
  }
}

describe('SIGKILL of a producer at random points', () => {
  afterEach(() => {
    for (const child of running) child.proc.kill('SIGKILL');
  });

  it(`${KILLS} kills leave no partial visible message and lose no resolved push`, { timeout: 150_000 }, async () => {
    const random = generator(SEED);
    const pick = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)] as T;
    const configs: Config[] = Array.from({ length: KILLS }, (_, i) => ({
      durability: i % 2 === 0 ? 'fsync' : 'none',
      sizes: pick(['small', 'mixed', 'large'] as const),
      parallel: 1 + Math.floor(random() * 4),
      batch: random() < 0.25,
      groups: random() < 0.3 ? 2 : 1,
      from: i % 4 < 2 ? 'start' : 'first-push',
      killAfterMs: i % 4 < 2 ? 5 + Math.floor(random() * 56) : Math.floor(random() * 61),
    }));
    const totals = { kills: 0, resolved: 0, files: 0, orphans: 0, spoolsWithOrphans: 0, emptyKills: 0, fsync: 0 };
    const started = Date.now();
    let next = 0;
    let failed = false;
    const lane = async () => {
      while (next < configs.length && !failed) {
        const i = next++;
        const c = configs[i] as Config;
        const context = `kill ${i + 1} (${describeConfig(c)})`;
        const spool = await spoolPath();
        let resolved: Map<string, Omit<Valid, 'id'>>;
        let check: SpoolCheck;
        try {
          resolved = await crashOnce(spool, c);
          check = await checkSpool(spool);
          expectResolvedVisible(check, resolved, c.groups, context);
        } catch (error) {
          failed = true; // the other lanes stop after their current kill
          throw new Error(`${context}, spool ${spool}: ${(error as Error).message}`, { cause: error });
        }
        totals.kills++;
        if (c.durability === 'fsync') totals.fsync++;
        totals.resolved += resolved.size;
        totals.files += check.files;
        totals.orphans += check.orphans.length;
        if (check.orphans.length > 0) totals.spoolsWithOrphans++;
        if (resolved.size === 0) totals.emptyKills++;
        await rm(spool, { recursive: true, force: true });
      }
    };
    const lanes = await Promise.allSettled(Array.from({ length: LANES }, lane));
    for (const l of lanes) if (l.status === 'rejected') throw l.reason;
    console.log(
      `crash.spec: ${totals.kills} kills (${totals.fsync} fsync, ${totals.kills - totals.fsync} none; seed ${SEED}): ${totals.resolved} resolved ids checked, ${totals.files} visible files checked, ` +
        `0 partial; ${totals.orphans} orphan tmp files in ${totals.spoolsWithOrphans} spools; ` +
        `${totals.emptyKills} kills before any push resolved; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(totals.kills).toBe(KILLS);
    // The kills must land while pushes are in flight, not all before the first one resolved.
    expect(totals.resolved).toBeGreaterThan(KILLS);
  });

  it('recovery at open keeps young orphan tmp files and removes old ones', async () => {
    const random = generator(SEED + 1);
    let spool = '';
    let resolved = new Map<string, Omit<Valid, 'id'>>();
    let check: SpoolCheck | null = null;
    // Large messages from 4 loops with fdatasync: most kills land mid-write and leave orphans.
    for (let attempt = 0; attempt < 20 && !check?.orphans.length; attempt++) {
      spool = await spoolPath();
      const c: Config = {
        durability: 'fsync',
        sizes: 'large',
        parallel: 4,
        batch: false,
        groups: 1,
        from: 'first-push',
        killAfterMs: Math.floor(random() * 40),
      };
      resolved = await crashOnce(spool, c);
      check = await checkSpool(spool);
      expectResolvedVisible(check, resolved, 1, describeConfig(c));
    }
    const orphans = (check as SpoolCheck).orphans;
    expect(orphans.length, 'a kill left an orphan in tmp/ within 20 attempts').toBeGreaterThan(0);
    const visible = (check as SpoolCheck).groups.get('default') as Map<string, Valid>;

    // Young orphans may belong to a live producer that is still linking them: kept.
    await (await openQueue(spool, { codec: 'raw' })).close();
    const tmpFiles = async () => (await readdir(join(spool, 'tmp'))).map((n) => join(spool, 'tmp', n)).sort();
    expect(await tmpFiles()).toEqual([...orphans].sort());

    // Older than a publish can take: removed by recovery.
    const old = new Date(Date.now() - 2 * 3600_000); // older than the 1 h after which recovery takes a tmp file for an orphan
    for (const orphan of orphans) await utimes(orphan, old, old);
    const q = await openQueue(spool, { codec: 'raw' });
    try {
      expect(await tmpFiles(), 'old orphans are removed at open').toEqual([]);
      // Every visible message is still delivered, resolved ones byte for byte, and no orphan became one.
      const delivered = new Map<string, Buffer>();
      for (let m = await q.pop({ timeoutMs: 0 }); m !== null; m = await q.pop({ timeoutMs: 0 })) {
        expect(delivered.has(m.id), `${m.id} delivered once`).toBe(false);
        delivered.set(m.id, m.data);
        await m.ack();
      }
      expect([...delivered.keys()].sort()).toEqual([...visible.keys()].sort());
      for (const [id, pushed] of resolved) {
        const data = delivered.get(id) as Buffer;
        expect({ length: data.length, crc: crc32(data).toString(16) }, `payload of ${id}`).toEqual(pushed);
      }
      console.log(
        `crash.spec: recovery removed ${orphans.length} old orphan tmp file(s), kept them while young; ${delivered.size} messages delivered (${resolved.size} resolved)`,
      );
    } finally {
      await q.close();
    }
  });
});
