/**
 * A scan racing a producer at a bucket boundary (strict FIFO per producer). The fs wrapper
 * plays the producer at the worst moment: after the scan listed the older bucket, and before
 * it lists the newer one, message 1 is linked into the older bucket and message 2 into the
 * newer one. The scan must not return message 2 without message 1. The three ways of listing
 * a bucket are run: readdirSync() (small buckets on ext4 and the like), one readdir() (larger
 * ones) and streaming with opendir() (large buckets, and file systems whose directory sizes
 * are not bytes).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatBucket, formatReady } from '../lib/names.js';
import { cleanup, tempDir } from './helpers.js';

type Way = 'readdirSync' | 'opendirSync, large' | 'opendirSync, sizes not bytes';

/**
 * Runs (synchronously) before a directory is listed. `way` is the listing the sizes and the
 * file system type reported make the scan take for a bucket: statSync reports a 1 MiB bucket,
 * or statfs a file system of unknown type. `listedBy` is the call that listed the buckets.
 */
const hook: { beforeListing?: (dir: string) => void; way: Way; listedBy: Set<string> } = {
  way: 'readdirSync',
  listedBy: new Set(),
};
const isBucket = (dir: string) => /\/[0-9]-[0-9a-f]{10}$/.test(dir);

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    readdirSync: (dir: string, options?: never) => {
      if (isBucket(dir)) hook.listedBy.add('readdirSync');
      hook.beforeListing?.(dir);
      return real.readdirSync(dir, options);
    },
    opendirSync: (dir: string, options?: never) => {
      if (isBucket(dir)) hook.listedBy.add('opendirSync');
      hook.beforeListing?.(dir);
      return real.opendirSync(dir, options);
    },
    statSync: (path: string, options?: never) => {
      const info = real.statSync(path, options);
      if (hook.way === 'opendirSync, large' && isBucket(path)) Object.defineProperty(info, 'size', { value: 1024 * 1024 });
      return info;
    },
  };
});

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    readdir: async (dir: string, options?: never) => {
      if (isBucket(dir)) hook.listedBy.add('readdir'); // never, since the streamed listing replaced it
      hook.beforeListing?.(dir);
      return real.readdir(dir, options);
    },
    statfs: async (path: string) => ({ ...(await real.statfs(path)), ...(hook.way === 'opendirSync, sizes not bytes' ? { type: 0 } : {}) }),
  };
});

afterEach(async () => {
  hook.beforeListing = undefined;
  hook.listedBy.clear();
  await cleanup();
});

describe.each(['readdirSync', 'opendirSync, large', 'opendirSync, sizes not bytes'] as const)('buckets listed by %s', (way) => {
  beforeEach(() => {
    hook.way = way;
  });
  afterEach(() => {
    // the way under test was the one taken
    expect([...hook.listedBy]).toEqual([way.split(',')[0]]);
  });

  /**
   * Runs a scan of a ready/ with an older and a newer bucket of one priority while the fs hook
   * plays the producer: just before the newer bucket is listed, message 1 is linked into the
   * older one and message 2 into the newer one. With `olderExists: false` the older bucket is
   * made then too, after the scan read the bucket list.
   */
  async function raceAtBoundary(producer: string, olderExists: boolean) {
    const { scanReady } = await import('../lib/ready-index.js');
    const bucketMs = 10_000;
    const now = Date.now();
    const older = now - bucketMs; // the previous bucket
    const ready = await tempDir();
    const olderDir = join(ready, formatBucket(4, older, bucketMs));
    const newerDir = join(ready, formatBucket(4, now, bucketMs));
    if (olderExists) fs.mkdirSync(olderDir);
    fs.mkdirSync(newerDir);
    const m1 = formatReady({ priority: 4, visibleAt: older + bucketMs - 1, id: `${producer}000000000001`, attempt: 1 });
    const m2 = formatReady({ priority: 4, visibleAt: now, id: `${producer}000000000002`, attempt: 1 });
    let linked = false;
    hook.beforeListing = (dir) => {
      if (dir === newerDir && !linked) {
        linked = true;
        if (!olderExists) fs.mkdirSync(olderDir);
        fs.writeFileSync(join(olderDir, m1), 'm1');
        fs.writeFileSync(join(newerDir, m2), 'm2');
      }
    };
    const scan = await scanReady(ready, bucketMs, 100, now);
    return { linked, names: scan.entries.map((e) => e.name), m1, m2 };
  }
  it('a scan never returns a later message of a producer without the earlier one across buckets', async () => {
    const { linked, names, m1, m2 } = await raceAtBoundary('ab'.repeat(6), true);
    expect(linked).toBe(true);
    expect(names).toEqual([m1, m2]);
  });

  it('also when the older bucket is created after the scan read the bucket list', async () => {
    const { linked, names, m1, m2 } = await raceAtBoundary('cd'.repeat(6), false);
    expect(linked).toBe(true);
    expect(names).toEqual([m1, m2]);
  });
});
