import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openQueue } from '../lib/index.js';
import { cleanup, listFiles, spoolPath, tempDir } from './helpers.js';

afterEach(cleanup);

/** Pushes `data` and returns the path of its file in ready/. */
async function readyFiles(dir: string): Promise<string[]> {
  return (await listFiles(dir)).filter((f) => f.startsWith('groups/default/ready/')).map((f) => join(dir, f));
}

describe('recovery at open', () => {
  it('removes old orphan tmp files and keeps young ones (a live producer may own them)', async () => {
    const dir = await spoolPath();
    await (await openQueue(dir)).close();
    await writeFile(join(dir, 'tmp/orphan-old'), 'half a message');
    await writeFile(join(dir, 'tmp/young'), 'being written');
    const old = new Date(Date.now() - 2 * 3600_000); // past the 1 h after which a tmp file is an orphan
    await utimes(join(dir, 'tmp/orphan-old'), old, old);
    await mkdir(join(dir, 'tmp/group-deadbeef/ready'), { recursive: true });
    await utimes(join(dir, 'tmp/group-deadbeef'), old, old);
    await (await openQueue(dir)).close();
    expect((await readdir(join(dir, 'tmp'))).sort()).toEqual(['young']);
  });

  it('returns expired leases to ready with attempts + 1', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { leaseMs: 50 });
    const id = await q.push('held');
    expect((await q.pop({ timeoutMs: 0 }))?.id).toBe(id);
    await q.close(); // the lease is left running, as if the process died
    await new Promise((r) => setTimeout(r, 80));
    const again = await openQueue(dir, { leaseMs: 50 });
    expect(await again.stats()).toMatchObject({ ready: 1, leased: 0 });
    const m = await again.pop({ timeoutMs: 0 });
    expect(m).toMatchObject({ id, attempts: 2 });
    await again.close();
  });

  it('quarantines truncated, bit-flipped, empty, symlinked, oversized and misnamed files, and keeps delivering the good ones', async () => {
    const dir = await spoolPath();
    const q = await openQueue<string>(dir, { maxMessageBytes: 4096, envelopes: false }); // a file each, damaged one by one
    const ids = await q.pushMany(['good-1', 'truncated', 'flipped', 'empty', 'symlink', 'dir', 'big', 'good-2']);
    const files = await readyFiles(dir);
    const fileOf = (id: string) => files.find((f) => f.includes(id)) as string;
    const [, truncatedId, flippedId, emptyId, symlinkId, dirId, bigId] = ids as string[];
    await truncate(fileOf(truncatedId as string), 25);
    const flipped = await readFile(fileOf(flippedId as string));
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] as number) ^ 0x20;
    await writeFile(fileOf(flippedId as string), flipped);
    await truncate(fileOf(emptyId as string), 0);
    const outside = join(await tempDir(), 'secret');
    await writeFile(outside, 'not for the queue');
    const link = fileOf(symlinkId as string);
    await writeFile(link, ''); // replaced by a symlink below
    await import('node:fs/promises').then((fs) => fs.unlink(link));
    await symlink(outside, link);
    const asDir = fileOf(dirId as string);
    await import('node:fs/promises').then((fs) => fs.unlink(asDir));
    await mkdir(asDir);
    await writeFile(fileOf(bigId as string), Buffer.alloc(200_000)); // over the limit: not read whole
    const bucket = join(files[0] as string, '..');
    await writeFile(join(bucket, 'garbage name!'), 'junk');

    const delivered: string[] = [];
    for (let m = await q.pop({ timeoutMs: 0 }); m; m = await q.pop({ timeoutMs: 0 })) {
      delivered.push(m.data);
      await m.ack();
    }
    expect(delivered).toEqual(['good-1', 'good-2']);

    const dead = await q.deadLetters();
    const byId = new Map(dead.map((d) => [d.id, d]));
    expect(byId.get(truncatedId as string)).toMatchObject({ code: 'corrupt', reason: expect.stringContaining('length mismatch') });
    expect(byId.get(flippedId as string)).toMatchObject({ code: 'corrupt', reason: expect.stringContaining('CRC mismatch') });
    expect(byId.get(emptyId as string)).toMatchObject({ code: 'corrupt', reason: expect.stringContaining('truncated') });
    expect(byId.get(symlinkId as string)).toMatchObject({ code: 'corrupt', reason: expect.stringContaining('symbolic link') });
    expect(byId.get(dirId as string)).toMatchObject({ code: 'corrupt', reason: expect.stringContaining('not a regular file') });
    expect(byId.get(bigId as string)).toMatchObject({ code: 'too-large' });
    const stranger = dead.find((d) => d.code === 'bad-name');
    expect(stranger?.reason).toContain('garbage name!');
    expect(dead).toHaveLength(7);
    expect(await readFile(outside, 'utf8')).toBe('not for the queue'); // never followed nor moved
    expect((await q.stats()).dead).toBe(7);
    // Quarantined files are evidence, not work: requeueDead leaves them.
    expect(await q.requeueDead()).toEqual([]);
    await q.close();
  });

  it('a named pipe planted under a message name is quarantined, not waited on', async () => {
    const dir = await spoolPath();
    const q = await openQueue<string>(dir, { durability: 'none', envelopes: false });
    const [pipeId] = await q.pushMany(['to-be-a-pipe', 'good']);
    const file = (await readyFiles(dir)).find((f) => f.includes(pipeId as string)) as string;
    await import('node:fs/promises').then((fs) => fs.unlink(file));
    execFileSync('mkfifo', [file]);
    const m = await q.pop({ timeoutMs: 0 });
    expect(m?.data).toBe('good');
    expect(await q.deadLetters()).toMatchObject([{ id: pipeId, code: 'corrupt', reason: expect.stringContaining('not a regular file') }]);
    await q.close();
  });

  it('removes drained buckets once they are old', async () => {
    const dir = await spoolPath();
    const q = await openQueue(dir, { durability: 'none' });
    const ready = join(dir, 'groups/default/ready');
    await mkdir(join(ready, '4-0000000001')); // a drained bucket from 1970
    await q.push('x');
    const m = await q.pop({ timeoutMs: 0 });
    await m?.ack();
    expect(await readdir(ready)).not.toContain('4-0000000001');
    await q.close();
  });
});

describe('permissions', () => {
  it('spool directories are 0700 and message files 0600, whatever the umask', async () => {
    const old = process.umask(0);
    try {
      const dir = await spoolPath();
      const q = await openQueue(dir);
      await q.push('x');
      for (const d of ['', 'tmp', 'groups', 'groups/default', 'groups/default/ready', 'groups/default/leased']) {
        expect(((await stat(join(dir, d))).mode & 0o777).toString(8)).toBe('700');
      }
      for (const f of await readyFiles(dir)) expect(((await stat(f)).mode & 0o777).toString(8)).toBe('600');
      for (const bucket of await readdir(join(dir, 'groups/default/ready'))) {
        expect(((await stat(join(dir, 'groups/default/ready', bucket))).mode & 0o777).toString(8)).toBe('700');
      }
      expect(((await stat(join(dir, 'spoolq.json'))).mode & 0o777).toString(8)).toBe('600');
      await q.close();
    } finally {
      process.umask(old);
    }
  });
});
