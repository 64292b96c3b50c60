/**
 * The routing cache on a file system with coarse timestamps (found in review). A publish skips
 * the listing of groups/ while the directory's mtime is unchanged (lib/routing.ts); where mtimes
 * are whole seconds (ext4 with 128-byte inodes, HFS+; FAT: 2 s), a group created in the same
 * second as the last listing leaves the mtime as it was. The fs wrapper reports every mtime of
 * a bigint stat rounded down to the second, as such a file system would: a group created (by
 * another process) before a push is called must still get that push.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterEach, expect, it, vi } from 'vitest';
import { entryName } from '../lib/bindings.js';
import { openQueue } from '../lib/index.js';
import { cleanup, spoolPath } from './helpers.js';
import { drain } from './pubsub-helpers.js';

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const statSync = ((path: string, options?: { bigint?: boolean }) => {
    const info = real.statSync(path, options as never);
    if (options?.bigint && info) {
      const whole = (info as unknown as import('node:fs').BigIntStats).mtimeNs;
      Object.defineProperty(info, 'mtimeNs', { value: whole - (whole % 1_000_000_000n) });
    }
    return info;
  }) as typeof real.statSync;
  return { ...real, default: { ...real, statSync }, statSync };
});

afterEach(cleanup);

/** Opens (so creates) group `group` in another process, as a consumer starting elsewhere would. */
async function createGroupElsewhere(spool: string, group: string): Promise<void> {
  const dist = new URL('../dist/index.js', import.meta.url).href;
  const code = `const { openQueue } = await import(${JSON.stringify(dist)}); await (await openQueue(process.argv[1], { group: ${JSON.stringify(group)} })).close();`;
  await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code, spool]);
}

it('a group created in the same second as the last routing read gets the next push (5 rounds)', async () => {
  for (let round = 0; round < 5; round++) {
    const spool = await spoolPath();
    const producer = await openQueue(spool, { durability: 'none', group: null });
    await earlyInASecond();
    await createGroupElsewhere(spool, 'early'); // groups/ changes in this second
    await producer.push('before'); // lists groups/: its mtime, rounded, is this second's
    await createGroupElsewhere(spool, 'late'); // changes it again, in the same second
    await producer.push('after');
    const [early, late] = await Promise.all(['early', 'late'].map((group) => openQueue(spool, { durability: 'none', group })));
    expect(await early?.stats()).toMatchObject({ ready: 2 });
    expect(await late?.stats(), `round ${round}`).toMatchObject({ ready: 1 });
    await Promise.all([producer, early, late].map((q) => q?.close()));
  }
});

it('a bind or unbind in the same second as the last routing read routes the next push by it (5 rounds)', async () => {
  for (let round = 0; round < 5; round++) {
    const spool = await spoolPath();
    const producer = await openQueue(spool, { durability: 'none', group: null });
    const admin = await openQueue(spool, { durability: 'none', group: null });
    await createGroupElsewhere(spool, 'g'); // bound to '#'
    await earlyInASecond();
    await admin.unbind('g', ['#']); // routes change in this second: g takes nothing now
    await producer.push('dropped', { topic: 'x.a' }); // lists groups/: its mtime, rounded, is this second's
    await admin.bind('g', ['x.*']); // changes them again, in the same second: only a marker is renamed
    await producer.push('taken', { topic: 'x.b' });
    expect(await received(spool, 'g'), `round ${round}`).toEqual(['taken']);
    await Promise.all([producer, admin].map((q) => q.close()));
  }
});

// The cases below come from the reviews of a shortcut tried on 2026-11-27 and withdrawn (the
// route markers of the last listing standing in for a new one before the mtime settles,
// bench/README.md): each is a route change that resolved before a push, made so that a cache
// could miss it; they guard the guarantee against any such shortcut.

it('an unbind is seen by the next push when two markers were made at once (5 rounds)', async () => {
  for (let round = 0; round < 5; round++) {
    const spool = await spoolPath();
    const producer = await openQueue(spool, { durability: 'none', group: null });
    const admin = await openQueue(spool, { durability: 'none', group: null });
    const groups = join(spool, 'groups');
    await earlyInASecond();
    expect(markers(groups)).toEqual([]); // a first change of the routes lists groups/ and finds no marker ...
    await createGroupElsewhere(spool, 'g'); // meanwhile another process makes g (bound to '#') and marker X
    await producer.push('one'); // lists groups/: marker X
    // ... and makes one of its own, as Spool.routesChanged does when it finds none
    writeFileSync(join(groups, `.routes-${randomBytes(8).toString('hex')}`), '', { flag: 'wx' });
    expect(markers(groups)).toHaveLength(2);
    await admin.unbind('g', ['#']); // resolved: g takes nothing now, whichever marker readdir lists first
    await producer.push('two');
    expect(await received(spool, 'g'), `round ${round}`).toEqual(['one']);
    await Promise.all([producer, admin].map((q) => q.close()));
  }
});

it('a group that openQueue found, before its maker said the routes changed, gets the next push', async () => {
  const spool = await spoolPath();
  await (await openQueue(spool, { durability: 'none', group: 'g' })).close(); // g built, marker X
  const staged = join(spool, 'tmp', 'group-staged');
  const producer = await openQueue(spool, { durability: 'none', group: null });
  await earlyInASecond();
  renameSync(join(spool, 'groups', 'g'), staged); // as if g were still being built under tmp/
  await producer.push('one'); // lists groups/: no g, marker X
  renameSync(staged, join(spool, 'groups', 'g')); // its maker renames it in, and has not renamed X yet
  const found = await openQueue(spool, { durability: 'none', group: 'g' }); // resolves: g exists
  await producer.push('two');
  expect((await drain(found)).map((m) => m.data)).toEqual(['two']);
  await Promise.all([producer, found].map((q) => q.close()));
});

it('subscribe that finds its patterns already written by a bind elsewhere: the next push honours them', async () => {
  const spool = await spoolPath();
  const own = await openQueue(spool, { durability: 'none', group: 'g', topics: ['a.*'] });
  const producer = await openQueue(spool, { durability: 'none', group: null });
  await earlyInASecond();
  await producer.push('one', { topic: 'a.1' }); // lists groups/: g bound to a.*, marker X
  // another process's bind(g, ['x.*']): its entry is in place, its routesChanged not made yet
  writeFileSync(join(spool, 'groups/g/topics', entryName('x.*')), 'x.*');
  const sub = await own.subscribe(['a.*', 'x.*'], async () => {}); // resolves: g bound to exactly a.*, x.*
  await sub.close();
  await producer.push('two', { topic: 'x.1' });
  expect(await received(spool, 'g')).toContain('two');
  await Promise.all([producer, own].map((q) => q.close()));
});

it('deleteGroup that finds the group deleted elsewhere, not yet announced: a keepUnrouted push goes to unrouted (5 rounds)', async () => {
  for (let round = 0; round < 5; round++) {
    const spool = await spoolPath();
    await (await openQueue(spool, { durability: 'none', group: 'g', topics: ['x.*'] })).close();
    const producer = await openQueue(spool, { durability: 'none', group: null, keepUnrouted: true });
    const admin = await openQueue(spool, { durability: 'none', group: null });
    await earlyInASecond();
    await (await openQueue(spool, { durability: 'none', group: 'h', topics: ['y.*'] })).close(); // groups/ changes in this second
    await producer.push('one', { topic: 'x.1' }); // lists groups/: g, marker X
    renameSync(join(spool, 'groups/g'), join(spool, 'tmp/deleted-g-000000')); // another deleteGroup, before its routesChanged
    expect(await admin.deleteGroup('g')).toBe(false); // resolves: there is no g
    await producer.push('two', { topic: 'x.2' });
    expect(await received(spool, 'unrouted'), `round ${round}`).toEqual(['two']);
    await Promise.all([producer, admin].map((q) => q.close()));
  }
});

/** Waits for the start of the next second (+50 ms): what a round does next fits in that second. */
const earlyInASecond = () => sleep(1_000 - (Date.now() % 1_000) + 50);

/** What group `group` holds, drained through a handle of its own. */
async function received(spool: string, group: string): Promise<unknown[]> {
  const q = await openQueue(spool, { durability: 'none', group });
  try {
    return (await drain(q)).map((m) => m.data);
  } finally {
    await q.close();
  }
}

function markers(groups: string): string[] {
  return readdirSync(groups).filter((name) => name.startsWith('.routes-'));
}
