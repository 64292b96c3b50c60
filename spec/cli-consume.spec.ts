/**
 * `spoolq consume` and `spoolq tail` as separate processes: every message handled exactly once
 * across a concurrent producer shell, ack on exit 0 and nack otherwise (into the dead letters
 * after --max-attempts), the SPOOLQ_* environment, an exact --max, a graceful stop on SIGTERM
 * that waits for the running command, and a command that cannot be run.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { jsonLines, type Running, SQ, sh, sq, start } from './fixtures/cli-run.js';
import { cleanup, spoolPath, tempDir, waitFor } from './helpers.js';

const running: Running[] = [];
afterAll(async () => {
  for (const r of running) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  await cleanup();
});

function background(args: string[], cwd?: string): Running {
  const r = start(args, cwd ? { cwd } : {});
  running.push(r);
  return r;
}

const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');

describe.concurrent('consume', () => {
  it('seq 1000 | spoolq push --lines in one shell, consume --exec "cat >> out" in another: each line exactly once; SIGTERM exits 0', async ({
    expect,
  }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    const out = join(dir, 'out');
    const consumer = background(['consume', spool, '--exec', `cat >> ${out}`, '--concurrency', '4'], dir);
    const producer = await sh(`seq 1000 | ${SQ} push ${spool} --lines`, { timeoutMs: 60_000 });
    expect(producer.code, producer.stderr).toBe(0);
    expect(producer.stdout.trim().split('\n')).toHaveLength(1000);
    await waitFor(async () => (await lines(out)).length >= 1000, 50_000, 100);
    consumer.proc.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
    const got = await lines(out);
    expect(got).toHaveLength(1000);
    expect(got.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    const stats = JSON.parse((await sq(['stats', spool, '--json'])).stdout);
    expect(stats.groups.default).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
  });

  it('a non-zero exit nacks: attempts grow, SPOOLQ_* are set, and after --max-attempts it is a dead letter; requeue brings it back', async ({
    expect,
  }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    const env = join(dir, 'env');
    const id = (await sq(['push', spool, 'payload', '--topic', 'jobs.a', '-p', '2', '-H', 'k=v'])).stdout.trim();
    const script = `printf '%s|%s|%s|%s|%s|%s|%s\\n' "$SPOOLQ_ID" "$SPOOLQ_ATTEMPTS" "$SPOOLQ_TOPIC" "$SPOOLQ_PRIORITY" "$SPOOLQ_HEADERS" "$SPOOLQ_GROUP" "$(cat)" >> ${env}; exit 3`;
    const r = await sq(['consume', spool, '--exec', script, '--max-attempts', '3', '--backoff', '0', '--idle', '700']);
    expect(r.code, r.stderr).toBe(123); // some command failed, as xargs says it
    expect(await lines(env)).toEqual([1, 2, 3].map((n) => `${id}|${n}|jobs.a|2|{"k":"v"}|default|payload`));
    const dead = jsonLines((await sq(['dead', spool, 'list', '--json'])).stdout);
    expect(dead).toEqual([expect.objectContaining({ id, code: 'max-attempts', attempts: 3 })]);
    expect(dead[0]?.reason).toContain('exited with status 3');
    const requeued = await sq(['dead', spool, 'requeue', id]);
    expect(requeued.code).toBe(0);
    expect(requeued.stdout).toBe(`${id}\n`);
    const again = await sq(['consume', spool, '--exec', 'test "$SPOOLQ_ATTEMPTS" = 1', '--max', '1']);
    expect(again.code).toBe(0);
    const stats = JSON.parse((await sq(['stats', spool, '--json'])).stdout);
    expect(stats.groups.default).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
    const missing = await sq(['dead', spool, 'requeue', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^spoolq: ENOT_FOUND: 1 of the ids given is not a requeueable dead letter of group default: nope/);
  });

  it('--max N takes exactly N messages, even with more workers; --raw gives the exact bytes on stdin', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    await sq(['push', spool, 'a', 'b', 'c', 'd', 'e']);
    const r = await sq(['consume', spool, '--exec', `cat > ${dir}/msg-$SPOOLQ_ID`, '--max', '2', '--concurrency', '3', '--raw']);
    expect(r.code, r.stderr).toBe(0);
    const files = (await readdir(dir)).filter((f) => f.startsWith('msg-'));
    expect((await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).sort()).toEqual(['a', 'b']);
    const left = jsonLines((await sq(['peek', spool, '--json'])).stdout);
    expect(left.map((m) => [m.body, m.attempts])).toEqual([
      ['c', 1],
      ['d', 1],
      ['e', 1],
    ]);
  });

  it('SIGTERM stops taking messages and waits for the running command, which acks its message', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    await sq(['push', spool, 'one', 'two']);
    const started = join(dir, 'started');
    const done = join(dir, 'done');
    const consumer = background(['consume', spool, '--exec', `echo >> ${started}; sleep 0.7; cat >> ${done}`]);
    await waitFor(
      () =>
        readFile(started).then(
          () => true,
          () => false,
        ),
      20_000,
    ); // the command runs
    consumer.proc.kill('SIGTERM');
    expect(await consumer.exited, consumer.stderr()).toBe(0);
    expect(consumer.stderr()).toContain('waiting for 1 running command(s)');
    expect(await readFile(done, 'utf8')).toBe('one\n');
    const stats = JSON.parse((await sq(['stats', spool, '--json'])).stdout);
    expect(stats.groups.default).toMatchObject({ ready: 1, leased: 0, delayed: 0 });
  });

  it('a command slower than --lease keeps its message: the lease is extended while it runs', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    const out = join(dir, 'out');
    await sq(['push', spool, 'slow']);
    // Another worker is free the whole time: an expired lease would hand it the message again.
    const r = await sq([
      'consume',
      spool,
      '--exec',
      `sleep 1.5; echo "$SPOOLQ_ATTEMPTS" >> ${out}`,
      '--lease',
      '300ms',
      '--concurrency',
      '2',
      '--idle',
      '500',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('1\n');
    const stats = JSON.parse((await sq(['stats', spool, '--json'])).stdout);
    expect(stats.groups.default).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
  });

  it('a command that cannot be found stops consume with 127 before it burns the queue', async ({ expect }) => {
    const spool = await spoolPath();
    await sq(['push', spool, 'a', 'b', 'c']);
    const r = await sq(['consume', spool, '--exec', 'no-such-command-spoolq']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/^spoolq: EEXEC: the command "no-such-command-spoolq" was not found/m);
    const stats = JSON.parse((await sq(['stats', spool, '--json'])).stdout);
    expect(stats.groups.default).toMatchObject({ ready: 3, dead: 0 });
  });
});

describe.concurrent('tail', () => {
  it('prints each message as a JSON line and acks it; --max and --idle stop it', async ({ expect }) => {
    const spool = await spoolPath();
    await sq(['push', spool, 'x', 'y', 'z']);
    await sq(['push', spool, '--json'], { input: '{"n":1}' });
    const two = await sq(['tail', spool, '--max', '2']);
    expect(two.code).toBe(0);
    expect(jsonLines(two.stdout).map((m) => m.body)).toEqual(['x', 'y']);
    const rest = await sq(['tail', spool, '--idle', '300']);
    expect(rest.code).toBe(0);
    const got = jsonLines(rest.stdout);
    expect(got[0]).toMatchObject({ body: 'z', attempts: 1, codec: 'raw', group: 'default', topic: null, headers: {} });
    expect(got[1]).toMatchObject({ data: { n: 1 }, codec: 'json' });
    expect((await sq(['pop', spool])).code).toBe(3);
  });

  it('runs until SIGINT, printing messages pushed while it runs', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'spool');
    await sq(['groups', spool, 'create', 'default']);
    const tail = background(['tail', spool]);
    await sq(['push', spool, 'live']);
    await waitFor(() => tail.stdout().includes('"live"'), 20_000);
    tail.proc.kill('SIGINT');
    expect(await tail.exited).toBe(0);
  });
});
