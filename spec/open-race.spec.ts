/**
 * Concurrent creation of one spool, at its worst interleaving: this process reads no format file
 * (not written yet), then another process finishes creating the spool (format file, tmp/,
 * groups/) before this one lists the directory. It must open the spool, not refuse it.
 */
import * as fsp from 'node:fs/promises';
import { afterEach, expect, it, vi } from 'vitest';
import { cleanup, spoolPath } from './helpers.js';

const hook: { failFirstFormatRead: boolean } = { failFirstFormatRead: false };

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    readFile: async (path: string, options?: never) => {
      if (hook.failFirstFormatRead && String(path).endsWith('spoolq.json')) {
        hook.failFirstFormatRead = false;
        throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      }
      return real.readFile(path, options);
    },
  };
});

afterEach(async () => {
  hook.failFirstFormatRead = false;
  await cleanup();
});

it('a process that finds no format file, then a spool created meanwhile, opens it', async () => {
  const { openQueue } = await import('../lib/index.js');
  const dir = await spoolPath();
  await (await openQueue(dir, { group: 'first' })).close(); // the other process, done
  hook.failFirstFormatRead = true; // this process looked before it was done
  const q = await openQueue(dir, { group: 'second' });
  expect(hook.failFirstFormatRead).toBe(false);
  expect((await fsp.readdir(`${dir}/groups`)).filter((n) => !n.startsWith('.routes-')).sort()).toEqual(['first', 'second']);
  await q.close();
});
