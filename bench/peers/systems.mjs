/**
 * The queues under comparison, behind one small interface, each in its durable and its
 * non-durable class:
 *
 *   class     spoolq               plainjob (better-sqlite3 12, WAL)   qlobber-fsq
 *   durable   durability 'fsync'   synchronous = FULL                  flags: O_DSYNC
 *   fast      durability 'none'    synchronous = NORMAL (its default)  flags: 0 (its default)
 *
 * open(dir, cls) → { push(payload), pushMany(payloads), close() }. Every push resolves (or
 * returns) once the system says the message is published. Payloads are Buffers; plainjob stores
 * TEXT, so it gets the same bytes as a latin1 string of the same length.
 */
import { constants as C } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { better, defineQueue } from 'plainjob';
import qlobberFsq from 'qlobber-fsq';
import { DIST } from '../common.mjs';

const { openQueue } = await import(DIST);
const { QlobberFSQ } = qlobberFsq;

export const CLASSES = ['durable', 'fast'];
export const SYSTEMS = ['spoolq', 'plainjob', 'qlobber-fsq'];

/** The job type (plainjob) and topic (qlobber-fsq) of every message. */
export const TOPIC = 'bench';

const silent = { error: console.error, warn: console.warn, info() {}, debug() {} };

/**
 * spoolq: one queue handle, default group, codec 'raw'. `SPOOLQ_ENVELOPES=0` in the environment
 * (`--no-envelopes` of run.mjs, inherited by the consumer processes) writes a file per message.
 */
export const SPOOLQ_ENVELOPES = process.env.SPOOLQ_ENVELOPES !== '0';

export async function openSpoolq(dir, cls) {
  return openQueue(join(dir, 'spool'), { durability: cls === 'durable' ? 'fsync' : 'none', codec: 'raw', envelopes: SPOOLQ_ENVELOPES });
}

/**
 * plainjob's queue on a better-sqlite3 connection to `dir`/queue.db. defineQueue itself sets
 * journal_mode = WAL, synchronous = 1 (NORMAL) and busy_timeout = 5000; synchronous is a
 * per-connection setting, so the durable class sets FULL right after, and checks it took.
 */
export function openPlainjob(dir, cls) {
  const db = new Database(join(dir, 'queue.db'));
  const queue = defineQueue({ connection: better(db), logger: silent, serializer: (s) => s });
  if (cls === 'durable') db.pragma('synchronous = FULL');
  const sync = db.pragma('synchronous', { simple: true });
  const journal = db.pragma('journal_mode', { simple: true });
  if (sync !== (cls === 'durable' ? 2 : 1) || journal !== 'wal') throw new Error(`plainjob: synchronous=${sync}, journal_mode=${journal}`);
  return { queue, db };
}

/**
 * qlobber-fsq on `dir`, its defaults except `flags`: O_DSYNC in the durable class (it has no
 * fsync call of its own; `flags` is added to every open, so each write of the message file and
 * of the UPDATE stamp is synchronous). Resolves once its first scan is done ('start').
 * Work-queue messages (`single`) need fs-ext (flock): its absence is an error here, not a
 * silent fallback to fan-out.
 */
export function openQlobber(dir, cls, extra = {}) {
  return new Promise((resolve, reject) => {
    const fsq = new QlobberFSQ({ fsq_dir: join(dir, 'fsq'), flags: cls === 'durable' ? C.O_DSYNC : 0, ...extra });
    fsq.once('single_disabled', (err) => reject(new Error(`qlobber-fsq: work queues disabled (fs-ext missing?): ${err}`)));
    fsq.once('error', reject);
    fsq.once('start', () => {
      fsq.off('error', reject);
      fsq.on('error', (err) => console.error('qlobber-fsq error:', err));
      resolve(fsq);
    });
  });
}

/**
 * Documented options that make a QlobberFSQ object a producer only: no fs.watch of the UPDATE
 * file and no periodic scan after the first one (the longest setTimeout delay).
 */
export const PUBLISH_ONLY = { notify: false, poll_interval: 2 ** 31 - 1 };

/** Publishes one work-queue message (`single`: at most one subscriber gets it). */
export function qlobberPublish(fsq, payload) {
  return new Promise((resolve, reject) => {
    fsq.publish(TOPIC, payload, { single: true }, (err) => (err ? reject(err) : resolve()));
  });
}

export function qlobberStop(fsq) {
  return new Promise((resolve) => fsq.stop_watching(resolve));
}

/** A producer of each system, with the same three calls. */
export const producers = {
  async spoolq(dir, cls) {
    const q = await openSpoolq(dir, cls);
    return { push: (p) => q.push(p), pushMany: (list) => q.pushMany(list), close: () => q.close() };
  },

  /**
   * better-sqlite3 is synchronous: add() commits before it returns, and pushes "in flight"
   * run one after the other. addMany() is one transaction: its best batch API.
   */
  async plainjob(dir, cls) {
    const { queue } = openPlainjob(dir, cls);
    return {
      push: async (p) => {
        queue.add(TOPIC, p.toString('latin1'));
      },
      pushMany: async (list) => {
        queue.addMany(
          TOPIC,
          list.map((p) => p.toString('latin1')),
        );
      },
      close: async () => queue.close(),
    };
  },

  /**
   * qlobber-fsq has no batch API: pushMany publishes the whole list at once (all in flight)
   * and waits for every callback, the most it can do with a batch. The producer does not scan
   * the queue (PUBLISH_ONLY): with its defaults, each publish's UPDATE stamp wakes the
   * producer's own watcher, which rescans the bucket, and publishing ran about half as fast here.
   */
  async 'qlobber-fsq'(dir, cls) {
    const fsq = await openQlobber(dir, cls, PUBLISH_ONLY);
    return {
      push: (p) => qlobberPublish(fsq, p),
      pushMany: (list) => Promise.all(list.map((p) => qlobberPublish(fsq, p))),
      close: () => qlobberStop(fsq),
    };
  },
};
