/**
 * The consumer of steady.mjs, beside a producer that pushes for a while. It takes every message
 * as it comes and, with `ack`, acknowledges it (its file is deleted); with `hold`, it keeps it
 * (a long lease: nothing is deleted). For the raw floor (`floor-ack`, `floor-hold`), it lists
 * `<dir>/ready` over and over and unlinks each file, or renames it into `<dir>/held`.
 * Usage (forked with an IPC channel): node bench/steady-child.mjs <spool|dir> <ack|hold|floor-ack|floor-hold>
 * It says 'ready', works until 'stop', then sends { count } and exits.
 */
import { readdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DIST } from './common.mjs';

const [path, mode] = process.argv.slice(2);
let stopping = false;
process.once('message', () => {
  stopping = true;
});
let count = 0;

if (mode.startsWith('floor-')) {
  const ready = join(path, 'ready');
  process.send({ type: 'ready' });
  while (!stopping) {
    for (const name of readdirSync(ready)) {
      if (mode === 'floor-ack') unlinkSync(join(ready, name));
      else renameSync(join(ready, name), join(path, 'held', name));
      count++;
    }
    await new Promise((r) => setImmediate(r)); // lets the 'stop' message in
  }
} else {
  const { openQueue } = await import(DIST);
  const q = await openQueue(path, { codec: 'raw', durability: 'none', leaseMs: 3_600_000 });
  await q.pop({ timeoutMs: 0 }); // starts the doorbell watcher
  process.send({ type: 'ready' });
  while (!stopping) {
    const m = await q.pop({ timeoutMs: 100 });
    if (m === null) continue;
    if (mode === 'ack') await m.ack();
    count++;
  }
  await q.close();
}
process.send({ type: 'done', count }, () => process.disconnect());
