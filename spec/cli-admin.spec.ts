/**
 * `spoolq lock` (mutual exclusion across shells, fencing tokens, exit status, timeout, signals)
 * and `spoolq fsck` (corrupt files, bad names, expired leases: found, reported, repaired; a
 * spool of another user), plus `spoolq dead purge` of what fsck quarantined.
 */
import { execFile, spawn } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { jsonLines, MAIN, type Running, sq, start } from './fixtures/cli-run.js';
import { cleanup, spoolPath, tempDir, waitFor } from './helpers.js';

const running: Running[] = [];
afterAll(async () => {
  for (const r of running) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  await cleanup();
});

const run = promisify(execFile);

/** Every entry under `root` with its owner, mode and size: what a refused repair must not change. */
async function tree(root: string): Promise<string[]> {
  const entries: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const info = await lstat(path);
      entries.push(`${path.slice(root.length)} ${info.uid} ${info.mode.toString(8)} ${info.size}`);
      if (info.isDirectory()) await walk(path);
    }
  };
  await walk(root);
  return entries;
}

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
    const empty = await sq(['lock', spool, 'n', '--', '']); // refused by spawn() itself
    expect(empty.code).toBe(127);
    expect(empty.stderr).toMatch(/^spoolq: EEXEC: cannot run "": /);
    expect((await sq(['lock', spool, 'n', '--timeout', '0', '--', 'true'])).code).toBe(0); // and released
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

  it('Ctrl-C (SIGINT to the whole process group) reaches the command once, and the lock is released after it', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    // The command counts the SIGINTs it gets (node counts each delivery; a shell's trap merges
    // those that arrive close together), and ends by itself a second later.
    const counter = `let n = 0; process.on('SIGINT', () => n++); const fs = require('node:fs');
      fs.writeFileSync(${JSON.stringify(join(dir, 'ready'))}, '');
      setTimeout(() => { fs.writeFileSync(${JSON.stringify(join(dir, 'got'))}, \`\${n}\`); process.exit(5); }, 1000);`;
    const proc = spawn(process.execPath, [MAIN, 'lock', spool, 'n', '--', process.execPath, '-e', counter], {
      detached: true, // its own process group, as a terminal's foreground job
      stdio: 'ignore',
    });
    const exited = new Promise<number | string>((resolve) => proc.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
    await waitFor(() => exists(join(dir, 'ready')), 20_000);
    process.kill(-(proc.pid as number), 'SIGINT');
    expect(await exited).toBe(5);
    expect(await readFile(join(dir, 'got'), 'utf8')).toBe('1');
    expect((await sq(['lock', spool, 'n', '--timeout', '0', '--', 'true'])).code).toBe(0);
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
    // three pushes, three files: a flipped byte damages one message (one push of three would be one envelope)
    for (const body of ['one', 'two', 'three']) await sq(['push', spool, body]);
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

  it.skipIf(process.getuid?.() !== 0)(
    'as another user (root): reports the owner, and refuses --repair before touching anything',
    async ({ expect }) => {
      const spool = await spoolPath();
      const q = await openQueue(spool, { leaseMs: 50 });
      await q.push('held');
      await q.pop({ timeoutMs: 1_000 }); // never acked: an expired lease, which a repair would return
      await q.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await run('chown', ['-R', '65534:65534', spool]);
      const before = await tree(spool);

      const repair = await sq(['fsck', spool, '--repair']);
      expect(repair.code).toBe(1);
      expect(repair.stderr).toMatch(
        /^spoolq: ESPOOL_UNSAFE: The spool at .* belongs to uid 65534, not to this user \(uid 0\).*Run it as the owner/,
      );
      const check = await sq(['fsck', spool, '--json']);
      expect(check.code).toBe(4);
      expect(
        JSON.parse(check.stdout)
          .problems.map((p: { kind: string }) => p.kind)
          .sort(),
      ).toEqual(['expired-lease', 'unsafe']);
      expect(await tree(spool)).toEqual(before); // nothing created, moved or owned by root
    },
  );

  it('dead purge removes quarantined directories, FIFOs and symbolic links (never followed), by id or by file name', async ({ expect }) => {
    const spool = await spoolPath();
    await sq(['push', spool, 'one']);
    const [file] = await readyFiles(spool);
    const bucket = join(file as string, '..');
    const target = join(await tempDir(), 'target');
    await writeFile(target, 'keep me');
    await symlink(target, join(bucket, '4-01a21aaf783b-0702f52675fb000000000009-0001'));
    await mkdir(join(bucket, '4-01a21aaf783b-0702f52675fb00000000000a-0001', 'inner'), { recursive: true });
    await run('mkfifo', [join(bucket, '4-01a21aaf783b-0702f52675fb00000000000b-0001')]);
    expect((await sq(['fsck', spool, '--repair'])).code).toBe(0);
    const dead = jsonLines((await sq(['dead', spool, '--json'])).stdout);
    expect(dead.map((d) => d.id).sort()).toEqual(['0702f52675fb000000000009', '0702f52675fb00000000000a', '0702f52675fb00000000000b']);

    const byFile = await sq(['dead', spool, 'purge', '4-01a21aaf783b-0702f52675fb00000000000a-0001']);
    expect(byFile.code, byFile.stderr).toBe(0);
    expect(byFile.stdout).toBe('4-01a21aaf783b-0702f52675fb00000000000a-0001\n');
    const rest = await sq(['dead', spool, 'purge']);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stdout.split('\n').filter(Boolean).sort()).toEqual(['0702f52675fb000000000009', '0702f52675fb00000000000b']);
    expect(await readdir(join(spool, 'groups', 'default', 'dead'))).toEqual([]);
    expect(await readFile(target, 'utf8')).toBe('keep me');
    expect((await sq(['pop', spool])).stdout).toBe('one\n');
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
