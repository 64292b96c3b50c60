/**
 * The raw file-system floor: what the same directory costs without spoolq, one message at a
 * time, with the calls spoolq makes in the same style: the flushes (fdatasync, fsync) through
 * libuv's pool, everything else synchronous on the JS thread (lib/durable-fs.ts says why).
 * Until 2026-11-27 every floor call went through the pool, as fs/promises does; that floor is
 * 1.2–2× slower here, so ratios to it from before that date are not comparable.
 *
 *   writeFloor  open tmp/<i> O_EXCL, write 256 B, [fdatasync], close,
 *               rename into ready/, [fsync ready/]                        per message
 *   claimFloor  rename ready/<i> → leased/<i>, open, read, close, unlink   per message
 *
 * The directory handle for the fsync is opened once (a floor keeps it); spoolq opens it per
 * commit. Run alone: node bench/floor.mjs [--count 500] [--sync] [--concurrency 1]
 */
import {
  constants as C,
  closeSync,
  fdatasync,
  fsync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { nowMs, PAYLOAD, rate, Workspace } from './common.mjs';

const CREATE = C.O_WRONLY | C.O_CREAT | C.O_EXCL;

const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);

/** A tmp/ and a ready/ directory in `dir`, and a descriptor of ready/ for its fsyncs. */
export async function floorDirs(dir) {
  const tmp = join(dir, 'tmp');
  const ready = join(dir, 'ready');
  mkdirSync(tmp);
  mkdirSync(ready);
  const readyFd = openSync(ready, C.O_RDONLY | C.O_DIRECTORY);
  return { tmp, ready, readyFd, close: async () => closeSync(readyFd) };
}

/**
 * One message the raw way: tmp write [+ fdatasync] + rename [+ dir fsync]. Resolves to the
 * time (nowMs) the rename was done: when a watching consumer can see the message.
 */
export async function writeOne({ tmp, ready, readyFd }, name, sync, data = PAYLOAD) {
  const fd = openSync(join(tmp, name), CREATE, 0o600);
  try {
    if (writeSync(fd, data, 0, data.length) !== data.length) throw new Error('short write');
    if (sync) await fdatasyncAsync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(join(tmp, name), join(ready, name));
  const visible = nowMs();
  if (sync) await fsyncAsync(readyFd);
  return visible;
}

/**
 * Writes `payload` untimed into `dirs` for `ms` (at least once), as a producer that has been
 * running: the first few hundred files of a fresh directory are cheaper here (a sequential fast
 * write took 29.7 µs in the first 200 and 33.9 µs after 50 ms of writes, median of 21 rounds),
 * so a floor timed from its first file is lower than any warmed producer's.
 */
export async function warmUp(dirs, ms, sync, payload = PAYLOAD) {
  const start = nowMs();
  let i = 0;
  do await writeOne(dirs, `w${i++}`, sync, payload);
  while (nowMs() - start < ms);
}

/**
 * Writes `count` messages of `payload` into `dir`, `concurrency` at a time (1 = a sequential
 * producer), after `warmUpMs` of untimed writes (see warmUp; 0: none). With concurrency > 1
 * every message still fsyncs the directory itself (no group commit).
 */
export async function writeFloor(dir, { count, sync, concurrency = 1, warmUpMs = 0, payload = PAYLOAD }) {
  const dirs = await floorDirs(dir);
  try {
    if (warmUpMs > 0) await warmUp(dirs, warmUpMs, sync, payload);
    let next = 0;
    const worker = async () => {
      while (next < count) await writeOne(dirs, `m${next++}`, sync, payload);
    };
    const start = nowMs();
    await Promise.all(Array.from({ length: concurrency }, worker));
    return rate(count, nowMs() - start);
  } finally {
    await dirs.close();
  }
}

/** Claims, reads and deletes `count` files the raw way (one process): a consumer's floor. */
export async function claimFloor(dir, { count, payload = PAYLOAD }) {
  const dirs = await floorDirs(dir);
  const leased = join(dir, 'leased');
  mkdirSync(leased);
  try {
    for (let i = 0; i < count; i++) await writeOne(dirs, `m${String(i).padStart(8, '0')}`, false, payload);
  } finally {
    await dirs.close();
  }
  const buffer = Buffer.alloc(Math.max(4096, payload.length));
  const start = nowMs();
  for (const name of readdirSync(dirs.ready).sort()) {
    renameSync(join(dirs.ready, name), join(leased, name));
    const fd = openSync(join(leased, name), C.O_RDONLY);
    try {
      readSync(fd, buffer, 0, buffer.length, 0);
    } finally {
      closeSync(fd);
    }
    unlinkSync(join(leased, name));
  }
  return rate(count, nowMs() - start);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '500' },
      sync: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '1' },
    },
  });
  const ws = new Workspace();
  try {
    const options = { count: Number(values.count), sync: values.sync, concurrency: Number(values.concurrency) };
    const r = await writeFloor(await ws.dir('floor'), options);
    const what = values.sync ? 'fdatasync + dir fsync' : 'no sync';
    console.log(`floor ${what}, ${options.concurrency} in flight: ${r.usPerMsg.toFixed(1)} µs/msg, ${r.perSec.toFixed(0)} msgs/s`);
  } finally {
    await ws.cleanup();
  }
}
