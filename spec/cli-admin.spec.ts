/**
 * `spoolq lock` (mutual exclusion across shells, fencing tokens, exit status, timeout, signals)
 * and `spoolq fsck` (corrupt files, bad names, expired leases: found, reported, repaired), plus
 * `spoolq dead purge` of what fsck quarantined.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { jsonLines, type Running, sq, start } from './fixtures/cli-run.js';
import { cleanup, spoolPath, tempDir, waitFor } from './helpers.js';

const running: Running[] = [];
afterAll(async () => {
  for (const r of running) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  await cleanup();
});

const exists = (path: string) =>
  readFile(path).then(
    () => true,
    () => false,
  );

describe.concurrent('lock', () => {
  it('serialises concurrent shells: critical sections never interleave, and tokens increase', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    const section = 'echo "start $SPOOLQ_LOCK_TOKEN" >> log; sleep 0.3; echo "end $SPOOLQ_LOCK_TOKEN" >> log';
    const runs = await Promise.all([1, 2, 3].map(() => sq(['lock', spool, 'critical', '--', 'sh', '-c', section], { cwd: dir })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const log = (await readFile(join(dir, 'log'), 'utf8')).trim().split('\n');
    expect(log).toHaveLength(6);
    const tokens: number[] = [];
    for (let i = 0; i < log.length; i += 2) {
      const start = /^start (\d+)$/.exec(log[i] as string);
      expect(start, log.join('\n')).not.toBeNull();
      expect(log[i + 1]).toBe(`end ${start?.[1]}`);
      tokens.push(Number(start?.[1]));
    }
    expect([...tokens].sort((a, b) => a - b)).toEqual(tokens);
    expect(new Set(tokens).size).toBe(3);
  });

  it("exits with the command's status; 127 when it is not found; --timeout 0 on a held lock exits 3 (ELOCK_TIMEOUT)", async ({
    expect,
  }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    expect((await sq(['lock', spool, 'n', '--', 'sh', '-c', 'exit 5'])).code).toBe(5);
    const missing = await sq(['lock', spool, 'n', '--', 'no-such-command-spoolq']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/^spoolq: EEXEC: cannot run "no-such-command-spoolq": not found/);
    const holder = start(['lock', spool, 'n', '--', 'sh', '-c', `touch ${dir}/held; while [ ! -e ${dir}/release ]; do sleep 0.05; done`]);
    running.push(holder);
    await waitFor(() => exists(join(dir, 'held')), 20_000);
    const busy = await sq(['lock', spool, 'n', '--timeout', '0', '--', 'true']);
    expect(busy.code).toBe(3);
    expect(busy.stderr).toMatch(/^spoolq: ELOCK_TIMEOUT: Cannot take the lock n /);
    await writeFile(join(dir, 'release'), '');
    expect(await holder.exited).toBe(0);
    expect((await sq(['lock', spool, 'n', '--timeout', '0', '--', 'true'])).code).toBe(0);
  });

  it('passes SIGTERM to the command and releases the lock once it ended', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    const script = `trap 'echo term >> ${dir}/got; exit 9' TERM; touch ${dir}/ready; while :; do sleep 0.05; done`;
    const holder = start(['lock', spool, 'n', '--', 'sh', '-c', script]);
    running.push(holder);
    await waitFor(() => exists(join(dir, 'ready')), 20_000);
    holder.proc.kill('SIGTERM');
    expect(await holder.exited).toBe(9);
    expect(await readFile(join(dir, 'got'), 'utf8')).toBe('term\n');
    const next = await sq(['lock', spool, 'n', '--timeout', '0', '--', 'sh', '-c', 'echo $SPOOLQ_LOCK_TOKEN']);
    expect(next.code).toBe(0);
    expect(next.stdout).toBe('2\n');
  });
});

/** The paths of the ready message files of a group. */
async function readyFiles(spool: string, group = 'default'): Promise<string[]> {
  const ready = join(spool, 'groups', group, 'ready');
  const files: string[] = [];
  for (const bucket of (await readdir(ready)).sort()) {
    for (const name of (await readdir(join(ready, bucket))).sort()) files.push(join(ready, bucket, name));
  }
  return files;
}

describe.concurrent('fsck', () => {
  it('finds a flipped byte and bad names (exit 4); --repair quarantines them into dead/ (exit 0); the rest is still delivered', async ({
    expect,
  }) => {
    const spool = await spoolPath();
    await sq(['push', spool, 'one', 'two', 'three']);
    const clean = await sq(['fsck', spool]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/: 1 group, 3 message files checked \(3 ready, 0 delayed, 0 leased, 0 dead\): no problem\n$/);

    const [first, second] = await readyFiles(spool);
    const bytes = await readFile(second as string);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0x01, bytes.length - 1); // flip a bit of the payload
    await writeFile(second as string, bytes);
    const bucket = join(first as string, '..');
    await writeFile(join(bucket, 'not-a-message'), 'x');
    await writeFile(join(spool, 'groups', 'default', 'ready', 'junk'), 'x');
    await writeFile(join(spool, 'groups', 'default', 'dead', 'gone.why'), '{}');

    const found = await sq(['fsck', spool]);
    expect(found.code).toBe(4);
    expect(found.stdout).toContain(`corrupt: groups/default/ready/`);
    expect(found.stdout).toMatch(/CRC mismatch.*\[--repair would quarantine into groups\/default\/dead\/\]/);
    expect(found.stdout).toContain('4 problems, 0 repaired, 4 remaining (run with --repair)');
    const report = JSON.parse((await sq(['fsck', spool, '--json'])).stdout);
    expect(report.problems.map((p: { kind: string }) => p.kind).sort()).toEqual(['bad-name', 'bad-name', 'corrupt', 'orphan-reason']);
    expect(report).toMatchObject({ spool, repair: false, groups: 1, remaining: 4 });

    const repaired = await sq(['fsck', spool, '--repair']);
    expect(repaired.code, repaired.stdout).toBe(0);
    expect(repaired.stdout).toContain('4 problems, 4 repaired, 0 remaining');
    expect((await sq(['fsck', spool])).code).toBe(0);

    const dead = jsonLines((await sq(['dead', spool, '--json'])).stdout);
    expect(dead.map((d) => d.code).sort()).toEqual(['bad-name', 'bad-name', 'corrupt']);
    expect(dead.find((d) => d.code === 'corrupt')?.reason).toMatch(/^CRC mismatch/);
    expect((await sq(['pop', spool])).stdout).toBe('one\n');
    expect((await sq(['pop', spool])).stdout).toBe('three\n');
    expect((await sq(['pop', spool])).code).toBe(3);

    const purged = await sq(['dead', spool, 'purge', '--json']);
    expect(JSON.parse(purged.stdout).purged).toHaveLength(3);
    expect((await sq(['dead', spool, '--json'])).stdout).toBe('');
  });

  it('reports an expired lease of a dead consumer; --repair returns it to ready with attempts + 1', async ({ expect }) => {
    const spool = await spoolPath();
    const q = await openQueue(spool, { leaseMs: 50 });
    await q.push('held');
    const m = await q.pop({ timeoutMs: 1_000 });
    expect(m?.body.toString()).toBe('"held"');
    await q.close(); // never acked: as if the consumer died
    await new Promise((resolve) => setTimeout(resolve, 100));
    const found = await sq(['fsck', spool, '--json']);
    expect(found.code).toBe(4);
    expect(JSON.parse(found.stdout).problems).toEqual([
      expect.objectContaining({ kind: 'expired-lease', group: 'default', repair: 'return it to ready/', repaired: false }),
    ]);
    const repaired = await sq(['fsck', spool, '--repair']);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/^expired-lease: groups\/default\/leased\/.*\[repaired: return it to ready\/\]$/m);
    const popped = jsonLines((await sq(['pop', spool, '--json'])).stdout)[0];
    expect(popped).toMatchObject({ attempts: 2, codec: 'json', data: 'held' });
  });

  it('refuses a directory that is not a spool, and never creates one', async ({ expect }) => {
    const dir = await tempDir();
    const r = await sq(['fsck', join(dir, 'missing')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^spoolq: ESPOOL_PATH: There is no spool at /);
    const empty = await sq(['fsck', dir]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^spoolq: ESPOOL_FORMAT: /);
    expect(await readdir(dir)).toEqual([]);
  });
});
