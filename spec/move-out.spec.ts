/**
 * A record moved out of an envelope (a nack, or the split of an expired part) must be in exactly
 * one place at every instant, so that no kill can make the same (id, attempt) be delivered twice.
 * spec/fixtures/kill-at.mjs kills the process (SIGKILL, before the call is made) on its n-th
 * rename, on its n-th link, and (a split) on its n-th unlink, for every n the run makes, counted in
 * the order the process issues them, sync or async (strace's `inject=…:when=N` counts per thread,
 * so a sweep with it never reached the calls made on libuv's pool), in two processes:
 *
 *   - a consumer holding a part of 5 records: it acks record 0 (a write into the lease's ack
 *     file, also swept: its n-th pwrite), nacks record 1, holds record 2;
 *   - after that consumer is killed and its lease expired, a process whose openQueue splits the
 *     part (recovery at open).
 *
 * After each kill a clean consumer drains the queue. Every record that was not acked is then
 * delivered exactly once, a record that was acked never, a record the killed consumer had got
 * comes back with a higher attempt, and nothing is left in ready/ or leased/.
 * (Before the move-out was a link and a rename, a nack or a split wrote a copy, then set the
 * record's bit: killed between the two, the copy and the envelope both delivered it.)
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../dist/index.js';
import { cleanup, collectOutput, FIXTURES, listFiles, spoolPath, tempDir, waitFor } from './helpers.js';
import { parseTrace } from './strace.js';

afterEach(cleanup);

const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
if (!hasStrace) console.log('move-out.spec: strace is not on PATH, so it is skipped');

const LEASE_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Syscall = 'rename' | 'link' | 'unlink' | 'write';

interface Run {
  /** How the process ended: 'SIGKILL' when it was killed (by kill-at.mjs, or by us once done), else its exit code. */
  exit: string;
  stdout: string;
  /** The renames, links and unlinks it made, in order (strace's record). */
  calls: Array<{ name: string; args: string; ret: string }>;
  /** The operation kill-at.mjs killed it on, before the call was made, if it did. */
  killedIn: Syscall | null;
  /** What it prints once it has done its work ('ready', 'reaped'). */
  done: string;
}

/**
 * Runs a fixture under strace (which records its renames, links and unlinks, and makes the
 * `inject` tampering), killed by spec/fixtures/kill-at.mjs on its `when`-th call of `syscall`
 * (none: not killed). A fixture still running once it printed `done` is killed then, as a crash would.
 */
async function killedRun(
  fixture: string,
  args: string[],
  killAt: { syscall: Syscall; when: number; into?: string } | null,
  done: string,
  inject: string[] = [],
): Promise<Run> {
  const trace = join(await tempDir('spoolq-move-out-'), 'trace');
  const proc: ChildProcess = spawn(
    'strace',
    [
      '-f',
      '-qq',
      '-e',
      'trace=rename,link,unlink,pwrite64',
      ...inject.flatMap((i) => ['-e', `inject=${i}`]),
      '-o',
      trace,
      process.execPath,
      ...(killAt ? ['--import', join(FIXTURES, 'kill-at.mjs')] : []),
      join(FIXTURES, fixture),
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: a kill reaches node under strace too
      env: killAt
        ? { ...process.env, KILL_AT: [killAt.syscall, killAt.when, ...(killAt.into ? [killAt.into] : [])].join(':') }
        : process.env,
    },
  );
  const output = collectOutput(proc);
  const exited = new Promise<string>((resolve) => proc.on('exit', (code, signal) => resolve(signal ?? String(code))));
  const ended = await Promise.race([exited, waitFor(() => output.stdout().includes(done), 20_000).then(() => null)]);
  if (ended === null) process.kill(-(proc.pid as number), 'SIGKILL');
  const exit = ended ?? 'SIGKILL';
  await exited;
  const calls = parseTrace(await readFile(trace, 'utf8')).map(({ name, args, ret }) => ({ name, args, ret }));
  const killedIn = (/^kill-at (rename|link|unlink|write) #/m.exec(output.stderr())?.[1] as Syscall | undefined) ?? null;
  return { exit, stdout: output.stdout(), calls, killedIn, done };
}

const said = (run: Run, verb: string) =>
  run.stdout
    .split('\n')
    .filter((l) => l.startsWith(`${verb} `))
    .map((l) => l.slice(verb.length + 1));

/** strace's name of the call: kill-at.mjs's `write` counts the writes at a position. */
const traced = (syscall: Syscall) => (syscall === 'write' ? 'pwrite64' : syscall);
const callsOf = (run: Run, syscall: Syscall) => run.calls.filter((c) => c.name === traced(syscall)).length;

/**
 * How many calls of `syscall` every run makes, from a run not killed: a move-out that finds its
 * ready bucket missing (the clock crossed into the next one: about one run in twelve here)
 * unlinks its rest link, makes the bucket and links and renames again, so a run can make one
 * rename, link and unlink more than another (and no more writes: the ack is not retried).
 */
const fewestCalls = (dry: Run, syscall: Syscall) =>
  callsOf(dry, syscall) -
  (syscall === 'write' // the retry writes no ack
    ? 0
    : dry.calls.filter((c) => c.name === 'rename' && c.ret.startsWith('-1 ENOENT') && /^"[^"]*", "[^"]*\/ready\//.test(c.args)).length);

/**
 * Kills a fresh run (`start`) on entering its 1st, 2nd, … call of `syscall`, checking each
 * (`check`), until a run makes fewer calls than that and finishes, which is checked too: the
 * sweep follows the run's own number of calls, which can vary (fewestCalls). Returns how many
 * runs were killed.
 */
async function sweep<R extends Run>(
  syscall: Syscall,
  what: string,
  start: (when: number) => Promise<R>,
  check: (label: string, run: R) => Promise<void>,
): Promise<number> {
  for (let when = 1; when < 100; when++) {
    const label = `${what} killed before ${syscall} #${when}`;
    const run = await start(when);
    if (run.killedIn === null) {
      expect(run.stdout, `${label}: not killed, so it ran to its end`).toContain(run.done);
      expect(callsOf(run, syscall), `${label}: not killed, so it made fewer`).toBeLessThan(when);
      await check(`${what} not killed: it makes ${when - 1} calls of ${syscall}`, run);
      return when - 1;
    }
    expect(run.killedIn, label).toBe(syscall);
    await check(label, run);
  }
  throw new Error(`${what}: still killed before ${syscall} #100`);
}

/**
 * Drains the queue once every lease has expired, and again once more leases could have expired
 * (a duplicate made by a reap shows only at the next one): the deliveries, then what is left in
 * ready/ and leased/.
 */
async function drainAll(spool: string): Promise<{ got: Array<{ id: string; attempts: number }>; left: string[] }> {
  const got: Array<{ id: string; attempts: number }> = [];
  for (let round = 0; round < 2; round++) {
    await sleep(LEASE_MS + 100);
    const q = await openQueue(spool, { durability: 'fsync', leaseMs: LEASE_MS });
    for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
      got.push({ id: m.id, attempts: m.attempts });
      await m.ack();
    }
    await q.close();
  }
  const left = (await listFiles(join(spool, 'groups/default'))).filter((f) => /^(ready|leased)\//.test(f) && !f.endsWith('/'));
  return { got, left };
}

/** A spool holding one envelope of 5 records. */
async function fiveRecords(): Promise<{ spool: string; ids: string[] }> {
  const spool = await spoolPath();
  const q = await openQueue<number>(spool, { durability: 'fsync' });
  const ids = await q.pushMany([0, 1, 2, 3, 4]);
  await q.close();
  return { spool, ids };
}

/** The consumer's part: ack record 0, nack record 1, hold record 2 (envelope-consumer.mjs). */
const consume = (spool: string, syscall: Syscall | null, when: number, into?: string) =>
  killedRun('envelope-consumer.mjs', [spool, '1', '1', String(LEASE_MS)], syscall ? { syscall, when, into } : null, 'ready');

/** Checks the drain after one kill, for the records `consumer` got (acked ones must not come back). */
function checkDrain(
  label: string,
  ids: string[],
  consumer: Run,
  drained: Awaited<ReturnType<typeof drainAll>>,
  damaged: ReadonlySet<string> = new Set(),
): void {
  const acked = new Set([...said(consumer, 'acked'), ...damaged]); // a damaged record is never delivered either
  const hadIt = new Set([...acked, ...said(consumer, 'nacked'), ...said(consumer, 'holding')]);
  const times = new Map<string, number>();
  for (const { id } of drained.got) times.set(id, (times.get(id) ?? 0) + 1);
  for (const id of ids) {
    expect(
      times.get(id) ?? 0,
      `${label}: ${id} (${damaged.has(id) ? 'damaged' : acked.has(id) ? 'acked' : 'not acked'}) is delivered this often`,
    ).toBe(acked.has(id) ? 0 : 1);
  }
  for (const { id, attempts } of drained.got) {
    if (hadIt.has(id)) expect(attempts, `${label}: ${id} comes back with a higher attempt`).toBeGreaterThan(1);
  }
  expect(drained.left, `${label}: nothing is left behind`).toEqual([]);
}

describe.skipIf(!hasStrace)('a record moved out of an envelope, the process killed before each rename and each link', () => {
  it('a consumer killed at every step of its claim, ack and nack', { timeout: 120_000 }, async () => {
    const { spool, ids } = await fiveRecords();
    const dry = await consume(spool, null, 0);
    // the claim and the nack's move-out: at least 2 renames and 1 link; the ack: 1 write
    expect(fewestCalls(dry, 'rename'), 'renames of the consumer').toBeGreaterThanOrEqual(2);
    expect(fewestCalls(dry, 'link'), 'links of the consumer').toBeGreaterThanOrEqual(1);
    expect(fewestCalls(dry, 'write'), 'writes at a position of the consumer (the ack)').toBeGreaterThanOrEqual(1);
    for (const syscall of ['rename', 'link', 'write'] as const) {
      const killed = await sweep(
        syscall,
        'consumer',
        async (when) => {
          const run = await fiveRecords();
          return { ...(await consume(run.spool, syscall, when)), ...run };
        },
        async (label, run) => checkDrain(label, run.ids, run, await drainAll(run.spool)),
      );
      expect(killed, `runs of the consumer killed before a ${syscall}`).toBeGreaterThanOrEqual(fewestCalls(dry, syscall));
    }
    checkDrain('not killed by strace', ids, dry, await drainAll(spool));
  });

  /**
   * The state a split starts from: the consumer acked 0, nacked 1, was killed holding 2, and its
   * lease expired. With `leftover`, it was killed instead before the rename of its nack (after
   * the link): leased/ holds the part and a leftover link with its token.
   */
  const expiredPart = async (state: 'clean' | 'leftover' | 'damaged') => {
    const run = await fiveRecords();
    // The nack's rename is the consumer's first into a ready/ bucket (the claim's goes into
    // leased/): counted by target, it stays the nack's whatever else the consumer renames.
    const consumer = state === 'leftover' ? await consume(run.spool, 'rename', 1, '/ready/') : await consume(run.spool, null, 0);
    const leasedDir = join(run.spool, 'groups/default/leased');
    const leased = await readdir(leasedDir);
    expect(leased, 'one leased name, or the part and its leftover').toHaveLength(state === 'leftover' ? 2 : 1);
    const damaged = new Set<string>();
    if (state === 'damaged') {
      // A bit of record 3's payload flipped: the split takes the part apart (Leases #quarantine).
      const path = join(leasedDir, leased[0] as string);
      const bytes = await readFile(path);
      let at = 0;
      for (let k = 0; k < 3; k++) at += 20 + bytes.readUInt32LE(at + 8) + bytes.readUInt32LE(at + 12);
      const payload = at + 20 + bytes.readUInt32LE(at + 8);
      bytes.writeUInt8(bytes.readUInt8(payload) ^ 0x01, payload);
      await writeFile(path, bytes);
      damaged.add(run.ids[3] as string);
    }
    await sleep(LEASE_MS + 50);
    return { ...run, consumer, damaged };
  };

  it.each(['clean', 'leftover', 'damaged'] as const)(
    'the split of an expired part killed at every step (the part: %s)',
    { timeout: 180_000 },
    async (state) => {
      const dry = await expiredPart(state);
      const reaper = await killedRun('open-reaper.mjs', [dry.spool, String(LEASE_MS)], null, 'reaped');
      // the split's claim, then records 1 (if the nack did not finish), 2, 3 and 4 moved out: a link and a rename each, the last by the rename alone
      expect(fewestCalls(reaper, 'rename'), 'renames of the split').toBeGreaterThanOrEqual(state === 'damaged' ? 2 : 3);
      expect(fewestCalls(reaper, 'link'), 'links of the split').toBeGreaterThanOrEqual(2);
      if (state !== 'clean')
        expect(fewestCalls(reaper, 'unlink'), 'the unlink of the leftover, or of what is left of the damaged part').toBeGreaterThanOrEqual(
          1,
        );
      for (const syscall of ['rename', 'link', 'unlink'] as const) {
        const killed = await sweep(
          syscall,
          `split (the part: ${state})`,
          async (when) => {
            const run = await expiredPart(state);
            return { ...(await killedRun('open-reaper.mjs', [run.spool, String(LEASE_MS)], { syscall, when }, 'reaped')), run };
          },
          async (label, { run }) => checkDrain(label, run.ids, run.consumer, await drainAll(run.spool), run.damaged),
        );
        expect(killed, `runs of the split killed before a ${syscall}`).toBeGreaterThanOrEqual(fewestCalls(reaper, syscall));
      }
      checkDrain('not killed by strace', dry.ids, dry.consumer, await drainAll(dry.spool), dry.damaged);
    },
  );

  it('two reapers at once, one slowed between its claim and its removal of the leftover link', { timeout: 60_000 }, async () => {
    const run = await expiredPart('leftover');
    // A is held 1.5 s before its first unlink (the leftover's), with the part claimed; B reaps then.
    const a = killedRun('open-reaper.mjs', [run.spool, String(LEASE_MS)], null, 'reaped', ['unlink:delay_enter=1500000:when=1']);
    await sleep(800); // A started, claimed the part, and waits
    const b = await killedRun('open-reaper.mjs', [run.spool, String(LEASE_MS)], null, 'reaped');
    expect(b.stdout).toContain('reaped');
    const slowed = await a;
    expect(slowed.stdout).toContain('reaped');
    expect(slowed.calls.find((c) => c.name === 'unlink')?.args, "A's first unlink is the leftover's").toMatch(/\/leased\//);
    checkDrain('two reapers', run.ids, run.consumer, await drainAll(run.spool));
  });
});
