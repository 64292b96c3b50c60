import { execFileSync, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { cleanup, FIXTURES, spoolPath, tempDir } from './helpers.js';
import { ok, parseTrace, strings } from './strace.js';

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
 * The ids renamed from tmp/ into ready/ successfully, in the order the calls started (parseTrace
 * joins a call that another thread interrupted, `<unfinished ...>` then `<... resumed>`).
 */
function successfulRenamesIntoReady(trace: string): string[] {
  const ids: string[] = [];
  for (const call of parseTrace(trace)) {
    if (call.name !== 'rename' || !ok(call)) continue;
    const [from, to] = strings(call);
    const id = /\/tmp\/([0-9a-f]{24})$/.exec(from ?? '')?.[1];
    if (id && to?.includes('/ready/')) ids.push(id);
  }
  return ids;
}
