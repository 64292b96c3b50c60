import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openQueue, SpoolqError } from '../lib/index.js';
import { cleanup, listFiles, spoolPath, tempDir } from './helpers.js';

afterEach(cleanup);

async function rejection(promise: Promise<unknown>): Promise<SpoolqError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SpoolqError);
  return error as SpoolqError;
}

describe('invalid options name the option and write nothing', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['leaseMs', { leaseMs: -1 }],
    ['leaseMs', { leaseMs: 1.5 }],
    ['maxAttempts', { maxAttempts: 0 }],
    ['backoff.baseMs', { backoff: { baseMs: 'soon' } }],
    ['backoff.maxMs', { backoff: { baseMs: 100, maxMs: 10 } }],
    ['durability', { durability: 'sometimes' }],
    ['codec', { codec: 'xml' }],
    ['maxMessageBytes', { maxMessageBytes: 0 }],
    ['usePolling', { usePolling: 'yes' }],
    ['prefetch', { prefetch: 0 }],
    ['claimBatch', { claimBatch: 129 }],
    ['claimBatch', { claimBatch: 0 }],
    ['leaseMS', { leaseMS: 100 }], // a typo is refused, not ignored
  ];
  it.each(cases)('%s', async (name, options) => {
    const dir = await spoolPath();
    const error = await rejection(openQueue(dir, options as never));
    expect(error.code).toBe('EINVALID_OPTION');
    expect(error.message).toContain(`\`${name}\``);
    await expect(readdir(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('invalid group names', () => {
  it.each(['../x', '', 'a/b', '.hidden', 'a\\b', 'x'.repeat(101), 'with space'])('%j', async (group) => {
    const dir = await spoolPath();
    const error = await rejection(openQueue(dir, { group }));
    expect(error.code).toBe('EINVALID_NAME');
    await expect(readdir(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('the spool path', () => {
  it('a file is refused with ESPOOL_PATH', async () => {
    const file = join(await tempDir(), 'file');
    await writeFile(file, 'x');
    expect((await rejection(openQueue(file))).code).toBe('ESPOOL_PATH');
  });

  it('an unknown format version is refused with ESPOOL_FORMAT and left untouched', async () => {
    const dir = await spoolPath();
    await (await openQueue(dir)).close();
    await writeFile(join(dir, 'spoolq.json'), JSON.stringify({ format: 'spoolq', version: 99, bucketMs: 10000 }));
    const before = await listFiles(dir);
    const error = await rejection(openQueue(dir, { group: 'new-group' }));
    expect(error.code).toBe('ESPOOL_FORMAT');
    expect(error.message).toContain('version 99');
    expect(await listFiles(dir)).toEqual(before);
  });

  it('a non-empty directory that is not a spool is refused and left untouched', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'notes.txt'), 'mine');
    expect((await rejection(openQueue(dir))).code).toBe('ESPOOL_FORMAT');
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });

  it('an empty existing directory becomes a spool', async () => {
    const dir = await tempDir();
    const q = await openQueue(dir);
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['spoolq.json', 'groups', 'tmp']));
    await q.close();
  });
});

describe('bad messages are refused before anything is written', () => {
  async function queueWithNoMessages(options = {}) {
    const dir = await spoolPath();
    const q = await openQueue(dir, { durability: 'none', ...options });
    const snapshot = async () => (await listFiles(dir)).filter((f) => !f.includes('doorbell'));
    return { q, dir, before: await snapshot(), snapshot };
  }

  it('data with no JSON form', async () => {
    const { q, before, snapshot } = await queueWithNoMessages();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const data of [circular, 10n, undefined, () => 1]) {
      expect((await rejection(q.push(data))).code).toBe('EMSG_ENCODE');
    }
    expect((await rejection(q.pushMany([1, 2n, 3]))).code).toBe('EMSG_ENCODE');
    expect(await snapshot()).toEqual(before);
    await q.close();
  });

  it('the raw codec refuses anything but strings and bytes', async () => {
    const { q } = await queueWithNoMessages({ codec: 'raw' });
    expect((await rejection(q.push({ a: 1 } as never))).code).toBe('EMSG_ENCODE');
    await q.close();
  });

  it('a message over maxMessageBytes', async () => {
    const { q, before, snapshot } = await queueWithNoMessages({ maxMessageBytes: 1000, codec: 'raw' });
    const error = await rejection(q.push(Buffer.alloc(1001)));
    expect(error.code).toBe('EMSG_TOO_LARGE');
    expect(error.message).toContain('1001');
    expect(await snapshot()).toEqual(before);
    await q.push(Buffer.alloc(1000));
    await q.close();
  });

  it('headers too large to store', async () => {
    const { q, before, snapshot } = await queueWithNoMessages();
    const error = await rejection(q.push('x', { headers: { big: 'x'.repeat(70_000) } }));
    expect(error.code).toBe('EINVALID_OPTION');
    expect(error.message).toContain('`headers`');
    expect(await snapshot()).toEqual(before);
    await q.close();
  });

  it('invalid push options', async () => {
    const { q, before, snapshot } = await queueWithNoMessages();
    for (const options of [{ priority: 10 }, { priority: -1 }, { delayMs: -5 }, { headers: { a: 1 } }, { prio: 1 }]) {
      expect((await rejection(q.push('x', options as never))).code).toBe('EINVALID_OPTION');
    }
    expect(await snapshot()).toEqual(before);
    await q.close();
  });

  it('a spool directory nested under a missing parent is created', async () => {
    const dir = join(await tempDir(), 'a', 'b', 'spool');
    const q = await openQueue(dir);
    await q.close();
    await mkdir(dir, { recursive: true }); // exists: no error
  });
});
