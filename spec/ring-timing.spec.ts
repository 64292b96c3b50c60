/**
 * When a durable producer rings its consumers (lib/group-commit.ts): once its commit's directory
 * fsyncs are under way, not after them, while the push still resolves only after they are done.
 * The fs wrapper lets every fsync run but holds its callback until the test lets it go, so that
 * the test can look in between.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { GroupCommit } from '../lib/group-commit.js';
import { openQueue } from '../lib/index.js';
import { cleanup, spoolPath, tempDir, waitFor, within } from './helpers.js';

/** While `held` is an array, the callbacks of fsyncs that succeeded wait in it. */
const fsyncs = vi.hoisted(() => ({ held: null as Array<() => void> | null }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const fsync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) =>
    real.fsync(fd, (error) => {
      if (fsyncs.held && !error) fsyncs.held.push(() => callback(null));
      else callback(error);
    })) as typeof real.fsync;
  return { ...real, default: { ...real, fsync }, fsync };
});

afterEach(async () => {
  for (const release of fsyncs.held ?? []) release();
  fsyncs.held = null;
  await cleanup();
});

it('a durable push rings the doorbell while its directory fsyncs run, and resolves once they are done', async () => {
  const spool = await spoolPath();
  const consumer = await openQueue(spool, { durability: 'none' });
  const producer = await openQueue(spool, { durability: 'fsync', group: null });
  const doorbell = join(spool, 'groups/default/doorbell');
  expect(readdirSync(doorbell), 'no ring yet').toEqual([]);

  const held: Array<() => void> = [];
  fsyncs.held = held;
  let resolved = false;
  const push = producer.push('m').then(() => {
    resolved = true;
  });
  await waitFor(() => held.length > 0); // the bucket's fsync is done, its callback held
  expect(readdirSync(doorbell), 'rung while the fsync was not yet reported done').toHaveLength(1);
  expect(resolved, 'not resolved before its fsyncs are done').toBe(false);

  fsyncs.held = null;
  for (const release of held) release();
  await within(push, 5_000, 'the push once its fsyncs were done');
  expect(resolved).toBe(true);
  await producer.close();
  await consumer.close();
});

it('a ring that throws neither fails nor stalls the commit', async () => {
  const dir = await tempDir();
  const commit = new GroupCommit(true, () => {
    throw new Error('a ring that fails');
  });
  await within(commit.commit({ dirs: [dir], doorbells: ['a doorbell'] }), 5_000, 'the first commit');
  await within(commit.commit({ dirs: [dir], doorbells: ['a doorbell'] }), 5_000, 'the next commit');
  expect(commit.failure).toBeNull();
});
