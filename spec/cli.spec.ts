/**
 * The `spoolq` command line (lib/cli/): conventions (help, version, exit codes, the error format),
 * push and pop in their three data modes, peek, stats, groups and topics. Every case spawns the
 * built command, as a user's shell does. Consumers, locks and fsck are in cli-*.spec.ts.
 */
import { constants } from 'node:fs';
import { access, chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { jsonLines, MAIN, SQ, sh, sq } from './fixtures/cli-run.js';
import { cleanup, spoolPath, tempDir } from './helpers.js';

afterAll(cleanup); // not afterEach: the tests of a describe.concurrent run at once

/** The README's "From the shell" section, once it is there. */
const SHELL_SECTION = /^## From the shell\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(
  await readFile(new URL('../README.md', import.meta.url), 'utf8'),
)?.[1];

const COMMANDS = ['push', 'pop', 'consume', 'tail', 'peek', 'stats', 'groups', 'dead', 'purge', 'lock', 'fsck'];

describe.concurrent('conventions', () => {
  it('spoolq --help lists every command; each command has --help with examples; --version is the package version', async ({ expect }) => {
    const [main, version, ...helps] = await Promise.all([sq(['--help']), sq(['--version']), ...COMMANDS.map((c) => sq([c, '--help']))]);
    expect(main.code).toBe(0);
    for (const c of COMMANDS) expect(main.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(main.stdout).toContain('Exit codes:');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(version.stdout.trim()).toBe(pkg.version);
    for (const [i, help] of helps.entries()) {
      expect(help.code, COMMANDS[i]).toBe(0);
      expect(help.stdout, COMMANDS[i]).toContain(`Usage: spoolq ${COMMANDS[i]} `);
      expect(help.stdout, COMMANDS[i]).toContain('Examples:');
      expect(help.stdout, COMMANDS[i]).toContain('Exit:');
    }
  });

  it('the built bin is an executable file with a node shebang', async ({ expect }) => {
    expect((await readFile(MAIN, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    await access(MAIN, constants.X_OK);
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.bin).toEqual({ spoolq: 'dist/cli/main.js' });
    const run = await sh(`"${MAIN}" --version`);
    expect(run.stdout.trim()).toBe(pkg.version);
  });

  it('usage errors exit 2 with spoolq: EUSAGE: …, and nothing is created', async ({ expect }) => {
    const dir = await tempDir();
    const spool = join(dir, 'never');
    const cases = [
      ['bogus'],
      ['pop'],
      ['pop', spool, '--bogus'],
      ['pop', spool, '--wait=soon'],
      ['pop', spool, '--wait', '100'],
      ['push', spool, '--raw', '--json', 'x'],
      ['push', spool, '--priority', '12', 'x'],
      ['push', spool, '--lines', 'x'],
      ['push', spool, '--header', 'novalue', 'x'],
      ['consume', spool],
      ['lock', spool, 'name'],
      ['lock', spool, 'name', '--'],
      ['dead', spool, 'explode'],
    ];
    const results = await Promise.all(cases.map((args) => sq(args)));
    for (const [i, r] of results.entries()) {
      expect(r.code, cases[i]?.join(' ')).toBe(2);
      expect(r.stderr, cases[i]?.join(' ')).toMatch(/^spoolq: EUSAGE: .+\nRun 'spoolq [a-z ]*--help' for usage\.\n$/);
      expect(r.stdout).toBe('');
    }
    await expect(access(spool)).rejects.toThrow();
    const none = await sq([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: spoolq COMMAND');
  });

  it('errors are one line on stderr, spoolq: CODE: what and what to do, exit 1', async ({ expect }) => {
    const dir = await tempDir();
    const file = join(dir, 'file');
    await writeFile(file, 'not a spool');
    const [onFile, missing, notSpool] = await Promise.all([
      sq(['push', file, 'x']),
      sq(['stats', join(dir, 'missing')]),
      sq(['peek', dir]),
    ]);
    expect(onFile.code).toBe(1);
    expect(onFile.stderr).toMatch(/^spoolq: ESPOOL_PATH: The spool path .*file is not a directory; .+\n$/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^spoolq: ESPOOL_PATH: There is no spool at .*missing; check the path/);
    expect(notSpool.code).toBe(1);
    expect(notSpool.stderr).toMatch(/^spoolq: ESPOOL_FORMAT: /);
    const spool = await spoolPath();
    await sq(['push', spool, 'x']);
    const noGroup = await sq(['stats', spool, '--group', 'nope']);
    expect(noGroup.code).toBe(1);
    expect(noGroup.stderr).toMatch(/^spoolq: EGROUP_NOT_FOUND: There is no group nope .*its groups are: default/);
    const badGroup = await sq(['pop', spool, '--group', '../x']);
    expect(badGroup.code).toBe(2);
    expect(badGroup.stderr).toMatch(/^spoolq: EINVALID_NAME: /);
    const badStatsGroup = await sq(['stats', spool, '--group', '../x']);
    expect(badStatsGroup.code).toBe(2);
    expect(badStatsGroup.stderr).toMatch(/^spoolq: EINVALID_NAME: /);
  });

  it('a stdin over maxMessageBytes is refused (EMSG_TOO_LARGE), as is an endless line with --lines; what came before is pushed', async ({
    expect,
  }) => {
    const spool = await spoolPath();
    // 64 MiB of zeros, while a message holds at most 16 MiB: refused, nothing pushed.
    const whole = await sh(`head -c 67108864 /dev/zero | ${SQ} push ${spool}`);
    expect(whole.code).toBe(1);
    expect(whole.stderr).toMatch(/^spoolq: EMSG_TOO_LARGE: stdin holds over 16777216 bytes/);
    expect((await sq(['stats', spool, '--json'])).stdout).toMatch(/"ready":0,/);
    const lines = await sh(`(printf 'first\\n'; head -c 67108864 /dev/zero) | ${SQ} push ${spool} --lines`);
    expect(lines.code).toBe(1);
    expect(lines.stderr).toMatch(/^spoolq: EMSG_TOO_LARGE: line 2 is over 16777216 bytes .* and has no end yet/);
    expect((await sq(['pop', spool])).stdout).toBe('first\n');
    expect((await sq(['pop', spool])).code).toBe(3);
  });
});

describe.concurrent('push and pop', () => {
  it('text mode: arguments and lines are messages without their newline; pop prints each as a line and acks it', async ({ expect }) => {
    const spool = await spoolPath();
    const pushed = await sq(['push', spool, 'hello world', 'second']);
    expect(pushed.code).toBe(0);
    const ids = pushed.stdout.trim().split('\n');
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{24}$/);
    const lines = await sq(['push', spool, '--lines'], { input: 'three\nfour\n\nlast without newline' });
    expect(lines.stdout.trim().split('\n')).toHaveLength(4);
    const all = await sq(['push', spool], { input: 'all of stdin\n' });
    expect(all.stdout.trim().split('\n')).toHaveLength(1);

    const popped: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await sq(['pop', spool]);
      expect(r.code).toBe(0);
      popped.push(r.stdout);
    }
    expect(popped).toEqual(['hello world\n', 'second\n', 'three\n', 'four\n', '\n', 'last without newline\n', 'all of stdin\n']);
    const empty = await sq(['pop', spool]);
    expect(empty.code).toBe(3);
    expect(empty.stdout).toBe('');
  });

  it('pop --wait=100 on an empty queue exits 3 after waiting; a bare --wait waits until a message arrives', async ({ expect }) => {
    const spool = await spoolPath();
    const r = await sq(['pop', spool, '--wait=100']);
    expect(r.code).toBe(3);
    expect(r.ms).toBeGreaterThanOrEqual(100);
    expect(r.stderr).toBe('');
    const waiting = sq(['pop', spool, '--wait']);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await sq(['push', spool, 'late']);
    const got = await waiting;
    expect(got.code).toBe(0);
    expect(got.stdout).toBe('late\n');
  });

  it('--raw round-trips any bytes exactly; --lines --raw keeps each newline', async ({ expect }) => {
    const spool = await spoolPath();
    const bytes = Buffer.from([0, 1, 2, 0x0a, 0xff, 0xfe, 0x0d, 0x0a, 0x80]);
    await sq(['push', spool, '--raw'], { input: bytes });
    await sq(['push', spool, '--raw', '--lines'], { input: 'a\nb' });
    const binary = await sq(['pop', spool, '--raw']);
    expect(binary.out.equals(bytes)).toBe(true);
    expect((await sq(['pop', spool, '--raw'])).stdout).toBe('a\n');
    expect((await sq(['pop', spool, '--raw'])).stdout).toBe('b');
    await sq(['push', spool, '--raw'], { input: bytes });
    const json = jsonLines((await sq(['pop', spool, '--json'])).stdout)[0];
    expect(json?.bodyBase64).toBe(bytes.toString('base64'));
    expect(json?.body).toBeUndefined();
  });

  it('pop --json has the metadata; priority, topic and headers are kept; delay holds a message back', async ({ expect }) => {
    const spool = await spoolPath();
    await sq(['groups', spool, 'create', 'default', '#']);
    await sq(['push', spool, 'low', '--priority', '7']);
    const pushed = await sq(['push', spool, 'urgent', '-p', '0', '--topic', 'orders.created', '-H', 'source=shop', '--header', 'k=a=b']);
    const t0 = Date.now();
    await sq(['push', spool, 'later', '--priority', '0', '--delay', '3s']);
    const first = jsonLines((await sq(['pop', spool, '--json'])).stdout)[0];
    expect(first).toEqual({
      id: pushed.stdout.trim(),
      group: 'default',
      attempts: 1,
      priority: 0,
      enqueuedAt: expect.any(Number),
      topic: 'orders.created',
      headers: { source: 'shop', k: 'a=b' },
      codec: 'raw',
      body: 'urgent',
    });
    const second = await sq(['pop', spool]);
    // 'later' has priority 0 but is not due for 3 s (unless this machine is so slow that 3 s passed)
    if (Date.now() - t0 < 2_900) expect(second.stdout).toBe('low\n');
    const later: Array<Record<string, any>> = [];
    while (!later.some((m) => m.body === 'later') && later.length < 2) {
      later.push(...jsonLines((await sq(['pop', spool, '--json', '--wait=10s'])).stdout));
    }
    const delayed = later.find((m) => m.body === 'later');
    expect(delayed).toBeDefined();
    expect(Date.now()).toBeGreaterThanOrEqual(delayed?.enqueuedAt + 3_000);
  });

  it('push --json stores JSON values (json codec); an invalid line stops the push after the lines before it', async ({ expect }) => {
    const spool = await spoolPath();
    const ok = await sq(['push', spool, '--json', '--lines'], { input: '{"to":"ada"}\n\n[1,2]\n' });
    expect(ok.stdout.trim().split('\n')).toHaveLength(2); // the blank line is skipped
    const a = jsonLines((await sq(['pop', spool, '--json'])).stdout)[0];
    expect(a).toMatchObject({ codec: 'json', data: { to: 'ada' } });
    expect((await sq(['pop', spool])).stdout).toBe('[1,2]\n');
    const bad = await sq(['push', spool, '--json', '--lines'], { input: '1\nnot json\n3\n' });
    expect(bad.code).toBe(1);
    expect(bad.stdout.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^spoolq: EMSG_ENCODE: line 2 is not valid JSON/);
    const badArgs = await sq(['push', spool, '--json', '2', '{']);
    expect(badArgs.code).toBe(1);
    expect(badArgs.stderr).toContain('nothing was pushed');
    expect(jsonLines((await sq(['peek', spool, '--json'])).stdout).map((m) => m.data)).toEqual([1]);
  });
});

describe.concurrent('inspecting', () => {
  it('peek shows messages in delivery order without claiming them', async ({ expect }) => {
    const spool = await spoolPath();
    await sq(['push', spool, '--lines'], { input: 'a\nb\nc\n' });
    await sq(['push', spool, 'first', '-p', '1']);
    const peeked = jsonLines((await sq(['peek', spool, '-n', '3', '--json'])).stdout);
    expect(peeked.map((m) => m.body)).toEqual(['first', 'a', 'b']);
    expect(peeked[0]).toMatchObject({ attempts: 1, priority: 1, visibleAt: expect.any(Number) });
    const table = await sq(['peek', spool]);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID +PRI +ATTEMPT +AGE +DUE +TOPIC +BYTES +BODY$/);
    expect(table.stdout).toContain('first');
    const stats = JSON.parse((await sq(['stats', spool, '--json'])).stdout);
    expect(stats.groups.default).toMatchObject({ ready: 4, leased: 0 });
    expect((await sq(['pop', spool])).stdout).toBe('first\n');
    await sq(['push', spool, 'delayed', '--delay', '1h']);
    expect(jsonLines((await sq(['peek', spool, '--json'])).stdout)).toHaveLength(3);
    expect(jsonLines((await sq(['peek', spool, '--json', '--delayed'])).stdout).map((m) => m.body)).toEqual(['a', 'b', 'c', 'delayed']);
  });

  it('stats --json: {spool, at, groups: {name: {ready, leased, delayed, dead, oldestReadyAgeMs}}}; the table has a row per group', async ({
    expect,
  }) => {
    const spool = await spoolPath();
    await sq(['groups', spool, 'create', 'audit', '#']);
    await sq(['groups', spool, 'create', 'default']);
    await sq(['push', spool, 'a', 'b']);
    await sq(['push', spool, 'c', '--delay', '1h']);
    await sq(['pop', spool, '--group', 'audit']);
    const r = await sq(['stats', spool, '--json']);
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stdout);
    expect(stats).toEqual({
      spool,
      at: expect.any(Number),
      groups: {
        audit: { ready: 1, leased: 0, delayed: 1, dead: 0, oldestReadyAgeMs: expect.any(Number) },
        default: { ready: 2, leased: 0, delayed: 1, dead: 0, oldestReadyAgeMs: expect.any(Number) },
      },
    });
    const one = JSON.parse((await sq(['stats', spool, '--json', '-g', 'audit'])).stdout);
    expect(Object.keys(one.groups)).toEqual(['audit']);
    const human = (await sq(['stats', spool])).stdout.split('\n');
    expect(human[0]).toMatch(/^GROUP +READY +LEASED +DELAYED +DEAD +OLDEST$/);
    expect(human[1]).toMatch(/^audit +1 +0 +1 +0 +\S+$/);
  });

  it('groups: create with patterns, topic routing, bind/unbind, list --json, delete; purge empties one group', async ({ expect }) => {
    const spool = await spoolPath();
    expect((await sq(['groups', spool, 'create', 'billing', 'orders.*'])).stdout).toBe('group billing: orders.*\n');
    await sq(['groups', spool, 'create', 'audit']);
    await sq(['push', spool, 'paid', '--topic', 'orders.paid']);
    await sq(['push', spool, 'hi', '--topic', 'greetings']);
    expect(jsonLines((await sq(['groups', spool, '--json'])).stdout)).toEqual([
      { name: 'audit', topics: ['#'] },
      { name: 'billing', topics: ['orders.*'] },
    ]);
    const stats = JSON.parse((await sq(['stats', spool, '--json'])).stdout);
    expect(stats.groups.billing.ready).toBe(1);
    expect(stats.groups.audit.ready).toBe(2);
    await sq(['groups', spool, 'unbind', 'audit', '#']);
    const dropped = await sq(['push', spool, 'lost', '--topic', 'greetings']);
    expect(dropped.code).toBe(0);
    expect(dropped.stderr).toMatch(/^spoolq: warning: no group .* matching the topic "greetings"/);
    expect((await sq(['groups', spool, 'bind', 'audit', 'greetings', 'x.#'])).stdout).toBe('group audit: greetings x.#\n');
    const purged = await sq(['purge', spool, '--group', 'audit', '--json']);
    expect(JSON.parse(purged.stdout)).toEqual({ group: 'audit', purged: 2 });
    expect((await sq(['groups', spool, 'delete', 'billing'])).code).toBe(0);
    const again = await sq(['groups', spool, 'delete', 'billing']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^spoolq: ENOT_FOUND: /);
    expect((await sq(['groups', spool])).stdout).toMatch(/^GROUP +TOPICS\naudit +greetings x\.#\n$/);
  });

  it('push into a fresh spool creates the group default, so nothing pushed before the first consumer is lost', async ({ expect }) => {
    const spool = await spoolPath();
    await sq(['push', spool, 'early']);
    expect(jsonLines((await sq(['groups', spool, '--json'])).stdout)).toEqual([{ name: 'default', topics: ['#'] }]);
    expect((await sq(['pop', spool])).stdout).toBe('early\n');
    // A group that does not exist is not created by a mistyped --group: only with --create.
    const typo = await sq(['pop', spool, '--group', 'late']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/^spoolq: EGROUP_NOT_FOUND: There is no group late .*\(its groups are: default\); pass --create/);
    expect(jsonLines((await sq(['groups', spool, '--json'])).stdout)).toEqual([{ name: 'default', topics: ['#'] }]);
    const other = await sq(['pop', spool, '--group', 'late', '--create']);
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('note: created group late');
    expect(jsonLines((await sq(['groups', spool, '--json'])).stdout).map((g) => g.name)).toEqual(['default', 'late']);
  });
});

describe('README', () => {
  it('the "From the shell" example runs as written (sh -e), with spoolq on the PATH', async ({ expect }) => {
    expect(SHELL_SECTION, 'README.md has a "From the shell" section').toBeDefined();
    const script = /```sh\n([\s\S]*?)```/.exec(SHELL_SECTION as string)?.[1];
    expect(script).toBeDefined();
    const dir = await tempDir();
    await writeFile(join(dir, 'spoolq'), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
    await chmod(join(dir, 'spoolq'), 0o755);
    const run = await sh((script as string).replaceAll('/tmp/spoolq-shell', join(dir, 'spool')), {
      cwd: dir,
      env: { PATH: `${dir}:${process.env.PATH}` },
      timeoutMs: 40_000,
    });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stderr).not.toMatch(/^spoolq: E/m);
  });
});
