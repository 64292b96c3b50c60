import { execFileSync, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { cleanup, FIXTURES, spoolPath, tempDir } from './helpers.js';

afterEach(cleanup);

const hasStrace = spawnSync('strace', ['-V']).status === 0;
if (!hasStrace) console.log('skipping the FIFO link-order spec: strace is not installed');

it.skipIf(!hasStrace)('links concurrent pushes of one producer in push order even when their data syncs finish out of order', async () => {
  const dir = await spoolPath();
  await (await openQueue(dir)).close();
  const trace = join(await tempDir(), 'trace');
  // Delay the first fdatasync on each libuv pool thread by 150 ms: later pushes finish their
  // data sync first. Linking them as soon as each sync finished would break FIFO.
  const out = execFileSync(
    'strace',
    [
      '-f',
      '-qq',
      '-e',
      'trace=rename,fdatasync',
      '-e',
      'inject=fdatasync:delay_exit=150000:when=1',
      '-o',
      trace,
      process.execPath,
      join(FIXTURES, 'fifo-push.mjs'),
      dir,
    ],
    { encoding: 'utf8' },
  );
  const ids: string[] = JSON.parse(out.trim().split('\n').pop() as string);
  const renamed = successfulRenamesIntoReady(await readFile(trace, 'utf8'));
  expect(renamed).toHaveLength(ids.length);
  expect(renamed).toEqual(ids);
});

/**
 * The ids renamed from tmp/ into ready/ successfully, in the order the calls started. strace -f
 * splits a call that another thread interrupts into `<unfinished ...>` and `<... resumed>` lines.
 */
function successfulRenamesIntoReady(trace: string): string[] {
  const started: Array<{ id: string; ok: boolean }> = [];
  const pending = new Map<string, { id: string; ok: boolean }>();
  for (const line of trace.split('\n')) {
    const start = /^(\d+)\s+rename\("[^"]*\/tmp\/([0-9a-f]{24})", "[^"]*\/ready\/[^"]*"(.*)$/.exec(line);
    if (start) {
      const call = { id: start[2] as string, ok: / = 0$/.test(start[3] as string) };
      started.push(call);
      if ((start[3] as string).includes('<unfinished')) pending.set(start[1] as string, call);
      continue;
    }
    const resumed = /^(\d+)\s+<\.\.\. rename resumed>.* = 0$/.exec(line);
    const call = resumed && pending.get(resumed[1] as string);
    if (call) call.ok = true;
  }
  return started.filter((c) => c.ok).map((c) => c.id);
}
