/**
 * Where the time of one sequential publish goes, for the fan-out setups of fanout.mjs. Not a
 * throughput benchmark: it wraps the fs/promises functions the library calls (and FileHandle's
 * methods) to timestamp every call, so it runs in its own process and is not part of run.mjs.
 *
 * A publish does its steps in order (publisher.ts), so each push splits into:
 *
 *   route   readdir of groups/ and of each group's topics/ (routing.ts)
 *   write   open tmp/<id>, write, [fdatasync], close
 *   place   link into each group's ready bucket but the last, rename into the last [+ mkdir]
 *   commit  per touched directory: open, [fsync], close (all directories at once)
 *   ring    per group, rename of this producer's doorbell file (a renameSync since
 *           2026-11-27, which this wrapper of fs/promises does not see; a durable commit now
 *           rings while its fsyncs run)
 *   rest    the JS around them: from the last ring to push() resolving, and before the first call
 *
 * Each phase's time is from the end of the previous phase's last call to the end of its own
 * last call, so the phases add up to the push. Calls counts fs/promises calls (libuv thread-pool
 * round trips; one readdir is one round trip for several syscalls).
 *
 *   node bench/fanout-profile.mjs [--count 300] [--durability none,fsync] [--setups single,route1of10,fanout]
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const fsp = require('node:fs/promises');

const PHASES = ['route', 'write', 'place', 'commit', 'ring'];
let current = null; // the events of the push being timed, or null
const now = () => Number(process.hrtime.bigint()) / 1e3; // µs
const handleCategory = new WeakMap();

function categorize(name, args) {
  const path = String(args[0] ?? '');
  const to = String(args[1] ?? '');
  if (name === 'readdir') return 'route';
  if (name === 'open') {
    if (/\/spool\d+\/tmp\//.test(path)) return 'write';
    if (/\/groups\/[^/]+\/ready\//.test(path)) return 'commit';
    return 'other';
  }
  if (name === 'link' || name === 'rename') {
    if (/\/doorbell\//.test(to)) return 'ring';
    if (/\/ready\//.test(to)) return 'place';
    return 'other';
  }
  if (name === 'mkdir') return 'place';
  if (name === 'writeFile') return /\/doorbell\//.test(path) ? 'ring' : 'other';
  return 'other';
}

async function timed(category, fn) {
  const events = current;
  const start = now();
  try {
    return await fn();
  } finally {
    events?.push({ category, start, end: now() });
  }
}

for (const name of ['open', 'readdir', 'link', 'rename', 'mkdir', 'writeFile', 'unlink', 'chmod']) {
  const original = fsp[name];
  fsp[name] = (...args) => {
    const category = categorize(name, args);
    if (name !== 'open') return timed(category, () => original(...args));
    return timed(category, async () => {
      const handle = await original(...args);
      handleCategory.set(handle, category);
      const close = handle.close; // an own property (a class field), not on the prototype
      handle.close = () => timed(category, () => close.call(handle));
      return handle;
    });
  };
}
syncBuiltinESMExports();
{
  // FileHandle's methods: found through a handle, wrapped on the prototype.
  const handle = await fsp.open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(handle);
  await handle.close();
  for (const name of ['write', 'datasync', 'sync', 'chmod']) {
    const original = proto[name];
    proto[name] = function (...args) {
      return timed(handleCategory.get(this) ?? 'other', () => original.apply(this, args));
    };
  }
}

// Imported only now, so that they bind the wrapped functions.
const { Workspace, PAYLOAD, fmt, percentile } = await import('./common.mjs');
const { SETUPS, openSetup } = await import('./fanout.mjs');

/** Splits one push's events into the phases; durations in µs, and calls per phase. */
function split(events, start, end) {
  const out = { total: end - start, calls: 0 };
  let boundary = start;
  for (const phase of PHASES) {
    const mine = events.filter((e) => e.category === phase);
    out[`${phase}Calls`] = mine.length;
    out.calls += mine.length;
    if (mine.length === 0) {
      out[phase] = 0;
      continue;
    }
    const last = Math.max(...mine.map((e) => e.end));
    out[phase] = Math.max(0, last - boundary);
    boundary = Math.max(boundary, last);
  }
  out.rest = end - boundary;
  out.otherCalls = events.filter((e) => e.category === 'other').length;
  out.calls += out.otherCalls;
  return out;
}

async function profile(ws, setupName, durability, count) {
  const [q] = await openSetup(await ws.dir(`profile-${setupName}`), SETUPS[setupName], durability);
  const options = SETUPS[setupName].topic ? { topic: SETUPS[setupName].topic } : undefined;
  try {
    for (let i = 0; i < 50; i++) await q.push(PAYLOAD, options); // warm-up
    await ws.settle();
    const pushes = [];
    for (let i = 0; i < count; i++) {
      current = [];
      const start = now();
      await q.push(PAYLOAD, options);
      const end = now();
      pushes.push(split(current, start, end));
      current = null;
    }
    return pushes;
  } finally {
    await q.close();
  }
}

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '300' },
    durability: { type: 'string', default: 'none,fsync' },
    setups: { type: 'string', default: 'single,route1of10,fanout' },
  },
});
const ws = new Workspace();
try {
  console.log(`Per sequential push, µs, over ${values.count} pushes: mean (median); the means add up to the total.`);
  console.log('Calls: fs/promises calls per push (thread-pool round trips).');
  console.log();
  console.log(
    '| setup | durability | route | write | place | commit | ring | rest | total | calls: route / write / place / commit / ring |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const durability of values.durability.split(',')) {
    for (const setup of values.setups.split(',')) {
      const pushes = await profile(ws, setup, durability, Number(values.count));
      const mean = (k) => pushes.reduce((s, p) => s + p[k], 0) / pushes.length;
      const median = (k) =>
        percentile(
          pushes.map((p) => p[k]).sort((a, b) => a - b),
          50,
        );
      const cell = (k) => `${fmt.us(mean(k))} (${fmt.us(median(k))})`;
      const calls = PHASES.map((p) => fmt.us(mean(`${p}Calls`))).join(' / ');
      console.log(
        `| ${SETUPS[setup].label} | ${durability} | ${[...PHASES, 'rest', 'total'].map(cell).join(' | ')} | ` +
          `${calls}${mean('otherCalls') > 0 ? ` (+${fmt.us(mean('otherCalls'))} other)` : ''} |`,
      );
    }
  }
} finally {
  await ws.cleanup();
}
