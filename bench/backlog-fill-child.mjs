/**
 * A producer process for backlog.mjs: pushes `count` messages of 256 B with pushMany(`batch`)
 * through the public API (durability 'none', envelopes: false), then reports. Several run at
 * once to fill a large backlog faster; the layout is exactly what real pushes produce. One file
 * per message is the worst case for the consumer's listings (with envelopes, 1M messages are
 * about 7,800 files), and the claim floor of backlog.mjs works on files.
 * Usage (forked with an IPC channel): node bench/backlog-fill-child.mjs <spool> <count> <batch>
 */
import { DIST, nowMs, PAYLOAD } from './common.mjs';

const { openQueue } = await import(DIST);
const [dir, count, batchSize] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const q = await openQueue(dir, { codec: 'raw', durability: 'none', envelopes: false });
const batch = Array.from({ length: batchSize }, () => PAYLOAD);
const start = nowMs();
for (let done = 0; done < count; done += batchSize) await q.pushMany(batch.slice(0, Math.min(batchSize, count - done)));
const ms = nowMs() - start;
await q.close();
process.send({ type: 'done', count, ms }, () => process.disconnect());
