/**
 * The raw file-system floor: what the same directory costs without spoolq, with the same async
 * fs/promises calls a single producer would make (libuv pool, one call awaited at a time).
 *
 *   writeFloor  open tmp/<i> O_EXCL, write 256 B, [fdatasync], close,
 *               rename into ready/, [fsync ready/]                        per message
 *   claimFloor  rename ready/<i> → leased/<i>, open, read, close, unlink   per message
 *
 * The directory handle for the fsync is opened once (a floor keeps it); spoolq opens it per
 * commit. Run alone: node bench/floor.mjs [--count 500] [--sync] [--concurrency 1]
 */
import { constants as C } from 'node:fs';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nowMs, PAYLOAD, rate, Workspace } from './common.mjs';

const CREATE = C.O_WRONLY | C.O_CREAT | C.O_EXCL;

/** A tmp/ and a ready/ directory in `dir`, and a handle on ready/ for its fsyncs. */
export async function floorDirs(dir) {
  const tmp = join(dir, 'tmp');
  const ready = join(dir, 'ready');
  await mkdir(tmp);
  await mkdir(ready);
  const readyHandle = await open(ready, C.O_RDONLY | C.O_DIRECTORY);
  return { tmp, ready, readyHandle, close: () => readyHandle.close() };
}

/**
 * One message the raw way: tmp write [+ fdatasync] + rename [+ dir fsync]. Resolves to the
 * time (nowMs) the rename was done: when a watching consumer can see the message.
 */
export async function writeOne({ tmp, ready, readyHandle }, name, sync, data = PAYLOAD) {
  const handle = await open(join(tmp, name), CREATE, 0o600);
  try {
    const { bytesWritten } = await handle.write(data, 0, data.length);
    if (bytesWritten !== data.length) throw new Error('short write');
    if (sync) await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(join(tmp, name), join(ready, name));
  const visible = nowMs();
  if (sync) await readyHandle.sync();
  return visible;
}

/**
 * Writes `count` messages into `dir`, `concurrency` at a time (1 = a sequential producer).
 * With concurrency > 1 every message still fsyncs the directory itself (no group commit).
 */
export async function writeFloor(dir, { count, sync, concurrency = 1 }) {
  const dirs = await floorDirs(dir);
  try {
    let next = 0;
    const worker = async () => {
      while (next < count) await writeOne(dirs, `m${next++}`, sync);
    };
    const start = nowMs();
    await Promise.all(Array.from({ length: concurrency }, worker));
    return rate(count, nowMs() - start);
  } finally {
    await dirs.close();
  }
}

/** Claims, reads and deletes `count` files the raw way (one process): a consumer's floor. */
export async function claimFloor(dir, { count }) {
  const dirs = await floorDirs(dir);
  const leased = join(dir, 'leased');
  await mkdir(leased);
  try {
    for (let i = 0; i < count; i++) await writeOne(dirs, `m${String(i).padStart(8, '0')}`, false);
  } finally {
    await dirs.close();
  }
  const buffer = Buffer.alloc(4096);
  const start = nowMs();
  for (const name of (await readdir(dirs.ready)).sort()) {
    await rename(join(dirs.ready, name), join(leased, name));
    const handle = await open(join(leased, name), C.O_RDONLY);
    try {
      await handle.read(buffer, 0, buffer.length, 0);
    } finally {
      await handle.close();
    }
    await unlink(join(leased, name));
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
