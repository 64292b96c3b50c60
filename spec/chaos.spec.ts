/**
 * Chaos (issue 3, item 1): several producer and consumer processes on one spool, killed with
 * SIGKILL at random and restarted, for a fixed time. Then the killing stops, the producers are
 * stopped, two clean consumers join the survivors until the group is empty, and the logs are
 * audited:
 *   - lost = 0: every id whose push resolved (a producer logged it) was processed at least once;
 *   - every duplicate is explained: each delivery of an id but its last was not acked and was
 *     either in a consumer killed before its ack was logged, or its ack/nack failed with
 *     ELEASE_LOST (the lease expired: slow pop consumers do this on purpose), or it was nacked
 *     on purpose; no delivery (id, attempt) happens twice and nothing is delivered after an ack;
 *   - the last delivery of each id was acked (or was in flight in a killed consumer);
 *   - nothing is left in ready/ or leased/, dead/ is empty (every handle uses maxAttempts 1000);
 *   - no visible file fails its length or CRC: ready/ and leased/ are swept every few seconds
 *     during the chaos by an independent validator (spec/validate-file.ts, as in crash.spec.ts, for
 *     the json codec), and a bad file would also be quarantined into dead/, which must stay empty.
 *
 * Producers mix durability 'fsync' and 'none', push and pushMany, priorities 0-9, some delays and
 * some 100 KiB messages; consumers mix consume() (with concurrency), pop loops and messages(),
 * with a 1.5 s lease, some slow handlers and some deliberate nacks. Every log line is one
 * fs.writeSync to a per-process file (fixtures chaos-*.mjs), so a SIGKILL loses nothing logged.
 *
 * `npm test` runs 35 s of chaos; `npm run test:chaos` (SPOOLQ_CHAOS=long) runs 10 minutes.
 * Choices (victims, intervals) are seeded: SPOOLQ_CHAOS_SEED replays them (timing stays real).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../dist/index.js';
import { type Child, cleanup, seededRandom as generator, listFiles, runFixture, spoolPath, tempDir, waitFor } from './helpers.js';
import { checkSpoolFile, LEASED_NAME } from './validate-file.js';

const LONG = process.env.SPOOLQ_CHAOS === 'long';
const CHAOS_MS = LONG ? 600_000 : 35_000;
const TIMEOUT_MS = CHAOS_MS + (LONG ? 240_000 : 75_000);
const SEED = Number(process.env.SPOOLQ_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const LEASE_MS = 1_500;
/** Every handle on the spool: recovery at open reaps with the opener's maxAttempts. */
const MAX_ATTEMPTS = 1_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Visible message files, checked by the independent validator of validate-file.ts (json codec;
// crash.spec.ts checks the raw codec)

/** Checks one visible message file or envelope of the json codec; throws with the reason when it is not complete. */
function validate(readyName: string, file: Buffer): void {
  for (const { codec, payload } of checkSpoolFile(readyName, file)) {
    if (codec !== 0) throw new Error(`codec ${codec}, the producers write json (0)`);
    const data = JSON.parse(payload.toString('utf8')) as { pad?: unknown; n?: unknown };
    if (typeof data.pad !== 'string' || data.pad.length !== data.n) throw new Error('payload is not a chaos message');
  }
}

/**
 * Validates every file visible in the group now (ready/ and leased/; those renamed away meanwhile
 * are skipped: a file never changes once visible, so what was opened is what was published).
 */
async function sweep(group: string): Promise<{ checked: number; bad: string[] }> {
  const result = { checked: 0, bad: [] as string[] };
  const check = async (path: string, readyName: string) => {
    let file: Buffer;
    try {
      file = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      validate(readyName, file);
      result.checked++;
    } catch (error) {
      result.bad.push(`${path} (${file.length} bytes): ${(error as Error).message}`);
    }
  };
  const ready = join(group, 'ready');
  for (const bucket of await readdir(ready)) {
    for (const name of await readdir(join(ready, bucket)).catch(() => [] as string[])) await check(join(ready, bucket, name), name);
  }
  for (const name of await readdir(join(group, 'leased'))) {
    const readyName = LEASED_NAME.exec(name)?.[1];
    if (readyName) await check(join(group, 'leased', name), readyName);
    else result.bad.push(`${join(group, 'leased', name)}: not a leased name`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Processes

type Role = 'producer' | 'consumer';

interface Proc {
  n: number;
  role: Role;
  slot: string;
  log: string;
  child: Child;
  /** SIGKILLed by the spec. */
  killed: boolean;
  /** Asked to stop with SIGTERM: must close and exit 0. */
  stopping: boolean;
}

interface Slot {
  name: string;
  role: Role;
  config: Record<string, unknown>;
}

const PRODUCERS: Slot[] = [
  { name: 'p-fsync-push', role: 'producer', config: { tag: 'a', durability: 'fsync', mode: 'push', loops: 2, paceMs: 20 } },
  { name: 'p-none-many', role: 'producer', config: { tag: 'b', durability: 'none', mode: 'pushMany', loops: 1, paceMs: 30 } },
  { name: 'p-fsync-mixed', role: 'producer', config: { tag: 'c', durability: 'fsync', mode: 'mixed', loops: 2, paceMs: 20 } },
];
const CHAOS_CONSUMER = { leaseMs: LEASE_MS, slowRate: 0.005, nackRate: 0.01 };
const CONSUMERS: Slot[] = [
  { name: 'c-consume', role: 'consumer', config: { ...CHAOS_CONSUMER, mode: 'consume', concurrency: 4 } },
  { name: 'c-pop', role: 'consumer', config: { ...CHAOS_CONSUMER, mode: 'pop', concurrency: 2, reconcileMs: 500 } },
  { name: 'c-iter', role: 'consumer', config: { ...CHAOS_CONSUMER, mode: 'iter', concurrency: 1 } },
];
const DRAINERS: Slot[] = [
  { name: 'd-consume', role: 'consumer', config: { leaseMs: LEASE_MS, slowRate: 0, nackRate: 0, mode: 'consume', concurrency: 4 } },
  { name: 'd-pop', role: 'consumer', config: { leaseMs: LEASE_MS, slowRate: 0, nackRate: 0, mode: 'pop', concurrency: 2 } },
];

const procs: Proc[] = [];

afterEach(async () => {
  for (const p of procs) if (p.child.proc.exitCode === null && p.child.proc.signalCode === null) p.child.proc.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.child.exited));
});
afterAll(cleanup);

// ---------------------------------------------------------------------------------------------
// The audit

interface Delivery {
  proc: Proc;
  attempt: number;
  acked: boolean;
  nacking: boolean;
  lost: boolean;
}

interface Audit {
  resolved: Set<string>;
  deliveries: Map<string, Delivery[]>;
  /** Lines that are failures by themselves: producer errors, bad payloads, unexpected errors. */
  complaints: string[];
}

/** Complete lines of a log: a line cut short by a SIGKILL has no newline and is dropped. */
async function lines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return ''; // killed before it opened its log
    throw error;
  });
  return text.split('\n').slice(0, -1);
}

async function readLogs(all: Proc[]): Promise<Audit> {
  const audit: Audit = { resolved: new Set(), deliveries: new Map(), complaints: [] };
  for (const p of all) {
    const open = new Map<string, Delivery>(); // `${id} ${attempt}` → delivery, within this process
    const find = (id: string, attempt: string, line: string) => {
      const d = open.get(`${id} ${attempt}`);
      if (!d) audit.complaints.push(`${p.slot}#${p.n}: "${line}" without "processing"`);
      return d;
    };
    for (const line of await lines(p.log)) {
      const [word, id = '', , attempt = '', code] = line.split(' ');
      if (p.role === 'producer') {
        if (word === 'pushed') audit.resolved.add(id);
        else if (word !== 'open' && word !== 'closed') audit.complaints.push(`${p.slot}#${p.n}: ${line}`);
        continue;
      }
      if (word === 'processing') {
        const d: Delivery = { proc: p, attempt: Number(attempt), acked: false, nacking: false, lost: false };
        open.set(`${id} ${attempt}`, d);
        const list = audit.deliveries.get(id) ?? [];
        list.push(d);
        audit.deliveries.set(id, list);
      } else if (word === 'acked') {
        const d = find(id, attempt, line);
        if (d) d.acked = true;
      } else if (word === 'nacking' || word === 'nacked') {
        const d = find(id, attempt, line);
        if (d) d.nacking = true;
      } else if (word === 'lost' && code === 'ELEASE_LOST') {
        const d = find(id, attempt, line);
        if (d) d.lost = true;
      } else if (word === 'error' && id === 'ELEASE_LOST' && line.split(' ')[3] === 'attempt') {
        // consume()'s onError: an extend or its own nack found the lease gone
        const [, , mid = '', , matt = ''] = line.split(' ');
        const d = find(mid, matt, line);
        if (d) d.lost = true;
      } else if (word !== 'open' && word !== 'closed') {
        audit.complaints.push(`${p.slot}#${p.n}: ${line}`);
      }
    }
  }
  return audit;
}

describe('chaos: producers and consumers killed with SIGKILL at random', () => {
  it(`${CHAOS_MS / 1000} s of kills and restarts: nothing resolved is lost, every duplicate is explained, the spool drains clean`, {
    timeout: TIMEOUT_MS,
  }, async () => {
    const random = generator(SEED);
    const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
    const spool = await spoolPath();
    const logs = await tempDir('spoolq-chaos-logs-');
    const group = join(spool, 'groups', 'default');
    const q = await openQueue(spool, { durability: 'none', maxAttempts: MAX_ATTEMPTS });
    const started = Date.now();
    const unexpected: string[] = [];
    const live = new Map<string, Proc>(); // slot → running process
    const kills = { producer: 0, consumer: 0 };
    let spawned = 0;

    const start = (slot: Slot): Proc => {
      const n = spawned++;
      const log = join(logs, `${slot.name}-${n}.log`);
      const config = { ...slot.config, maxAttempts: MAX_ATTEMPTS };
      const child = runFixture(`chaos-${slot.role}.mjs`, [spool, log, JSON.stringify(config)]);
      const p: Proc = { n, role: slot.role, slot: slot.name, log, child, killed: false, stopping: false };
      procs.push(p);
      live.set(slot.name, p);
      void child.exited.then((how) => {
        if (live.get(slot.name) === p) live.delete(slot.name);
        if (p.killed ? how !== 'SIGKILL' : !p.stopping || how !== 0) {
          unexpected.push(`${slot.name}#${n} exited with ${how} (killed ${p.killed}, stopping ${p.stopping}); stderr:\n${child.stderr()}`);
        }
      });
      return p;
    };
    const stop = async (p: Proc) => {
      p.stopping = true;
      // A process restarted just before the chaos ended may not have reached its SIGTERM handler
      // yet (Node takes tens of ms to load it): SIGTERM would then kill it (seen once in CI).
      // Its first log line comes after the handler is installed.
      await waitFor(async () => (await readFile(p.log, 'utf8').catch(() => '')).includes('open '), 20_000);
      p.child.proc.kill('SIGTERM');
      const how = await Promise.race([p.child.exited, sleep(30_000).then(() => 'still running 30 s after SIGTERM')]);
      expect(how, `${p.slot}#${p.n} stops on SIGTERM; stderr:\n${p.child.stderr()}`).toBe(0);
    };

    for (const slot of [...PRODUCERS, ...CONSUMERS]) start(slot);

    // The validator sweeps visible files while everything runs.
    let chaosOver = false;
    const crc = { sweeps: 0, checked: 0, bad: [] as string[] };
    const sweeper = (async () => {
      while (!chaosOver) {
        await sleep(3_000);
        const s = await sweep(group);
        crc.sweeps++;
        crc.checked += s.checked;
        crc.bad.push(...s.bad);
      }
    })();

    // Kill a random live process every 200-800 ms; restart its slot 0-400 ms later.
    const restarts: Promise<void>[] = [];
    while (Date.now() - started < CHAOS_MS && unexpected.length === 0) {
      await sleep(between(200, 800));
      const role: Role = random() < 0.5 ? 'producer' : 'consumer';
      const slots = (role === 'producer' ? PRODUCERS : CONSUMERS).filter((s) => live.has(s.name));
      if (slots.length === 0) continue;
      const slot = slots[between(0, slots.length - 1)] as Slot;
      const victim = live.get(slot.name) as Proc;
      victim.killed = true;
      victim.child.proc.kill('SIGKILL');
      kills[role]++;
      const delay = between(0, 400);
      restarts.push(
        (async () => {
          await victim.child.exited;
          await sleep(delay);
          start(slot);
        })(),
      );
    }
    await Promise.all(restarts);
    chaosOver = true;
    await sweeper;
    expect(unexpected, 'processes that died other than by the spec’s SIGKILL').toEqual([]);
    const chaosEnded = Date.now();

    // Stop the producers, add two clean consumers, and wait until the group is empty: the
    // leases of killed consumers expire after LEASE_MS and are reaped and redelivered.
    await Promise.all([...live.values()].filter((p) => p.role === 'producer').map(stop));
    for (const slot of DRAINERS) start(slot);
    let empty = 0;
    await waitFor(
      async () => {
        const s = await q.stats();
        empty = s.ready === 0 && s.leased === 0 && s.delayed === 0 ? empty + 1 : 0;
        return empty >= 3;
      },
      LONG ? 180_000 : 45_000,
      250,
    ).catch(async (error) => {
      throw new Error(`the group did not drain: ${JSON.stringify(await q.stats())}`, { cause: error });
    });
    const drained = Date.now();
    await Promise.all([...live.values()].map(stop));
    expect(unexpected, 'processes that died other than by the spec’s SIGKILL').toEqual([]);

    // The spool: nothing left, nothing dead, nothing corrupt (in every group there is).
    expect(await q.stats()).toEqual({ ready: 0, leased: 0, delayed: 0, dead: 0, oldestReadyAgeMs: null, unrouted: 0 });
    for (const name of (await readdir(join(spool, 'groups'))).filter((n) => !n.startsWith('.routes-'))) {
      const g = join(spool, 'groups', name);
      const left = await sweep(g);
      expect(left.bad, `files left in ${name}/ready/ or leased/ that fail validation`).toEqual([]);
      expect(await listFiles(join(g, 'ready')), `files left in ${name}/ready/`).toEqual([]);
      expect(await readdir(join(g, 'leased')), `files left in ${name}/leased/`).toEqual([]);
      expect(await readdir(join(g, 'dead')), `dead letters in ${name} (none expected: maxAttempts 1000)`).toEqual([]);
    }
    expect(crc.bad, 'visible files that failed the validator during the chaos').toEqual([]);
    const orphans = (await readdir(join(spool, 'tmp'))).length;
    await q.close();

    // The logs.
    const audit = await readLogs(procs);
    const lost = [...audit.resolved].filter((id) => !audit.deliveries.has(id));
    const unexplained: string[] = [];
    const explained = { kill: 0, lease: 0, nack: 0 };
    let deliveries = 0;
    let redeliveries = 0;
    let inFlightAtKill = 0;
    for (const [id, list] of audit.deliveries) {
      list.sort((a, b) => a.attempt - b.attempt);
      deliveries += list.length;
      redeliveries += list.filter((d) => d.attempt > 1).length;
      const where = (d: Delivery) => `${id} attempt ${d.attempt} in ${d.proc.slot}#${d.proc.n}${d.proc.killed ? ' (killed)' : ''}`;
      list.forEach((d, i) => {
        if (i > 0 && d.attempt === (list[i - 1] as Delivery).attempt)
          unexplained.push(`${where(d)}: delivered twice with the same attempt`);
        const last = i === list.length - 1;
        if (!last) {
          if (d.acked) unexplained.push(`${where(d)}: acked, then delivered again`);
          else if (d.lost) explained.lease++;
          else if (d.nacking) explained.nack++;
          else if (d.proc.killed) explained.kill++;
          else unexplained.push(`${where(d)}: not acked, not nacked, lease not lost, process not killed, yet delivered again`);
        } else if (!d.acked) {
          if (d.proc.killed && !d.lost && !d.nacking)
            inFlightAtKill++; // its ack may have succeeded unlogged
          else unexplained.push(`${where(d)}: the last delivery was ${d.lost ? 'lost' : 'nacked'} and never redelivered`);
        }
      });
    }
    const duplicates = deliveries - audit.deliveries.size;
    const unconfirmed = [...audit.deliveries.keys()].filter((id) => !audit.resolved.has(id)).length;
    console.log(
      `chaos.spec (${LONG ? 'long' : 'short'}, seed ${SEED}): ${audit.resolved.size} messages resolved, ${audit.deliveries.size} processed ` +
        `(${unconfirmed} of them pushed by a producer killed before it logged the id); ` +
        `kills ${kills.producer + kills.consumer} (producers ${kills.producer}, consumers ${kills.consumer}; ${spawned} processes started); ` +
        `lost ${lost.length}; duplicates ${duplicates} (explained: killed before ack ${explained.kill}, lease expired ${explained.lease}, nacked ${explained.nack}; ` +
        `unexplained ${unexplained.length}); redeliveries ${redeliveries}; last delivery in flight at a kill ${inFlightAtKill}; ` +
        `CRC: ${crc.checked} visible files checked in ${crc.sweeps} sweeps, ${crc.bad.length} bad; ${orphans} orphan tmp files; ` +
        `chaos ${((chaosEnded - started) / 1000).toFixed(1)} s, drain ${((drained - chaosEnded) / 1000).toFixed(1)} s, total ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    const kinds: Record<string, number> = {};
    for (const line of audit.complaints) {
      const kind = line.split(' ').slice(1, 3).join(' ');
      kinds[kind] = (kinds[kind] ?? 0) + 1;
    }
    expect(audit.complaints.slice(0, 20), `log lines that are failures by themselves, by kind: ${JSON.stringify(kinds)}`).toEqual([]);
    expect(lost, 'resolved ids never processed').toEqual([]);
    expect(unexplained.slice(0, 20), `unexplained duplicates (${unexplained.length})`).toEqual([]);
    expect(duplicates).toBe(explained.kill + explained.lease + explained.nack);
    // The run must have exercised what it claims to.
    expect(kills.producer).toBeGreaterThan(5);
    expect(kills.consumer).toBeGreaterThan(5);
    expect(audit.resolved.size).toBeGreaterThan(1_000);
    expect(explained.kill).toBeGreaterThan(0);
  });
});
