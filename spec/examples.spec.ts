/** The examples run as users run them: real processes on the built package (`npm test` builds first). */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { cleanup, tempDir } from './helpers.js';

afterEach(cleanup);

const NOTIFICATION_CENTER = fileURLToPath(new URL('../examples/notification-center/main.mjs', import.meta.url));

/** Runs an example to its end (or kills it after `timeoutMs`): exit code and output. */
function runExample(file: string, args: string[], timeoutMs: number): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [file, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => {
      stdout += d;
    });
    proc.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}

it('notification-center: both subscribers get every notification they match, across a SIGKILL and restart of each', async () => {
  const spool = join(await tempDir(), 'spool');
  const { code, stdout, stderr } = await runExample(NOTIFICATION_CENTER, ['--spool', spool, '--count', '30'], 25_000);
  const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
  expect(code, output).toBe(0);
  // Nothing on stderr but, on a machine so loaded that a subscriber stalls past its 1 s lease, the
  // warning of a lost lease (that notification is redelivered: at-least-once, nothing missing).
  const unexpected = stderr.split('\n').filter((line) => line && !/LeaseLostError|--trace-warnings/.test(line));
  expect(unexpected, output).toEqual([]);
  // Each subscriber was killed mid-run and came back.
  expect(stdout).toMatch(/SIGKILL email \(pid \d+\)/);
  expect(stdout).toMatch(/SIGKILL audit \(pid \d+\)/);
  expect(stdout.match(/\[email\] +subscribed to user\.\*, order\.paid/g)).toHaveLength(2);
  expect(stdout.match(/\[audit\] +subscribed to #/g)).toHaveLength(2);
  // The summary: email matches 4 of each cycle of 6 topics (see TOPICS in shared.mjs), audit all of them.
  expect(stdout).toMatch(/\[email\] +user\.\*, order\.paid +received 20 of 20, missing: 0;/);
  expect(stdout).toMatch(/\[audit\] +# +received 30 of 30, missing: 0;/);

  // The spool given is kept: both durable groups, bound as subscribed, and drained.
  const q = await openQueue(spool, { group: null });
  try {
    expect(await q.groups()).toEqual([
      { name: 'audit', topics: ['#'] },
      { name: 'email', topics: ['order.paid', 'user.*'] },
    ]);
    for (const group of ['audit', 'email']) {
      expect(await q.stats(group)).toMatchObject({ ready: 0, leased: 0, delayed: 0, dead: 0 });
    }
  } finally {
    await q.close();
  }
}, 30_000);
