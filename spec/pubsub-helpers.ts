/** Shared by the publish/subscribe specs: an independent topic matcher and looks at a spool's groups. */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { expect } from 'vitest';
import type { Queue } from '../lib/index.js';
import { listFiles } from './helpers.js';
import { checkSpoolFile } from './validate-file.js';

/** The marker in groups/ that is renamed whenever the routes change (one, random name). */
export const ROUTES_MARK = expect.stringMatching(/^\.routes-[0-9a-f]{16}$/);

/**
 * An AMQP topic matcher independent of lib/topics.ts: words split on '.', '*' is exactly one
 * word, '#' zero or more. A message without a topic matches only the pattern '#' itself.
 */
export function matches(pattern: string, topic: string | undefined): boolean {
  if (pattern === '#') return true;
  if (topic === undefined) return false;
  const p = pattern.split('.');
  const t = topic.split('.');
  const go = (i: number, j: number): boolean => {
    if (i === p.length) return j === t.length;
    if (p[i] === '#') {
      for (let k = j; k <= t.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < t.length && (p[i] === '*' || p[i] === t[j]) && go(i + 1, j + 1);
  };
  return go(0, 0);
}

/** Pops everything due in `q` (acking it) and returns data and topic, in order. */
export async function drain(q: Queue<unknown>): Promise<Array<{ data: unknown; topic: string | undefined }>> {
  const got: Array<{ data: unknown; topic: string | undefined }> = [];
  for (;;) {
    const m = await q.pop({ timeoutMs: 0 });
    if (!m) return got;
    got.push({ data: m.data, topic: m.topic });
    await m.ack();
  }
}

/** The ready files of a group (absolute paths), by message id: every message of an envelope maps to its file. */
export async function readyFiles(spool: string, group: string): Promise<Map<string, string>> {
  const ready = join(spool, 'groups', group, 'ready');
  const files = new Map<string, string>();
  for (const f of await listFiles(ready)) {
    const path = join(ready, f);
    for (const { id } of checkSpoolFile(basename(f), await readFile(path))) files.set(id, path);
  }
  return files;
}

/** Every message file left in the spool's groups (ready, leased or dead), relative to groups/. */
export async function groupMessageFiles(spool: string): Promise<string[]> {
  return (await listFiles(join(spool, 'groups'))).filter((f) => /^[^/]+\/(ready|leased|dead)\//.test(f));
}
