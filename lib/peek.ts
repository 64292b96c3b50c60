/**
 * peek(): reads the next messages of a group in delivery order without claiming them. Nothing
 * is renamed, so a running consumer is not disturbed, and what peek returns may be claimed by a
 * consumer a moment later: it is a snapshot, not a reservation.
 *
 * Order: ready names sort in delivery order (priority, visible-at time, producer, sequence) and
 * bucket directories sort by (priority, time), so reading buckets in order and names in order
 * within each gives the delivery order; only one bucket listing is in memory at a time.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno, storageError } from './errors.js';
import { openExistingGroup } from './existing-spool.js';
import { CorruptFileError } from './message-file.js';
import { parseReady } from './names.js';
import { type CodecName, checkGroupName, checkInteger, DEFAULTS, invalid, MAX_MESSAGE_BYTES_LIMIT } from './options.js';
import { type ReadMessage, readMessageFile } from './read-message.js';
import { listBuckets } from './ready-index.js';

export interface PeekOptions {
  /** The group to read. @default 'default' */
  group?: string;
  /** How many messages at most. @default 10 */
  limit?: number;
  /** Also list messages that are not due yet (delayed, or nacked with a backoff). @default false */
  includeDelayed?: boolean;
  /** Files larger than this payload are skipped (a consumer would quarantine them). @default 16 MiB */
  maxMessageBytes?: number;
  /**
   * Called for each file that is not a valid message (bad length or CRC, not a regular file…):
   * it is skipped, and left where it is (a consumer quarantines it; so does `fsck --repair`).
   */
  onSkip?: (file: string, reason: string) => void;
}

/** A message read without claiming it. */
export interface PeekedMessage {
  id: string;
  /** The payload decoded by the codec it was written with: a Buffer for raw. */
  data: unknown;
  body: Buffer;
  codec: CodecName;
  /** Deliveries so far + 1: the attempt the next delivery will be. */
  attempts: number;
  priority: number;
  enqueuedAt: number;
  /** When it is (or was) due, ms since the epoch. */
  visibleAt: number;
  headers: Readonly<Record<string, string>>;
  topic: string | undefined;
  /** The file's path. */
  file: string;
}

const PEEK_OPTIONS = ['group', 'limit', 'includeDelayed', 'maxMessageBytes', 'onSkip'];

/** The next `limit` messages of a group of the existing spool at `dir`, in delivery order, unclaimed. */
export async function peek(dir: string, options: PeekOptions = {}): Promise<PeekedMessage[]> {
  if (typeof options !== 'object' || options === null) throw invalid('peek options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!PEEK_OPTIONS.includes(key)) throw invalid(key, `one of the peek options ${PEEK_OPTIONS.join(', ')}`, '…');
  }
  const group = checkGroupName(options.group ?? 'default');
  const limit = checkInteger('limit', options.limit ?? 10, 0, 1_000_000);
  const maxMessageBytes = checkInteger('maxMessageBytes', options.maxMessageBytes ?? DEFAULTS.maxMessageBytes, 1, MAX_MESSAGE_BYTES_LIMIT);
  const { includeDelayed = false, onSkip } = options;
  if (onSkip !== undefined && typeof onSkip !== 'function') throw invalid('onSkip', 'a function', onSkip);
  const { paths } = await openExistingGroup(dir, group);
  const now = Date.now();
  const found: PeekedMessage[] = [];
  try {
    for (const bucket of await listBuckets(paths.ready, null)) {
      if (found.length >= limit) break;
      let names: string[];
      try {
        names = (await readdir(join(paths.ready, bucket))).sort();
      } catch (error) {
        if (isErrno(error, 'ENOENT', 'ENOTDIR')) continue; // removed as drained meanwhile
        throw error;
      }
      for (const name of names) {
        if (found.length >= limit) break;
        const ready = parseReady(name);
        if (!ready || (!includeDelayed && ready.visibleAt > now)) continue;
        const file = join(paths.ready, bucket, name);
        let read: ReadMessage;
        try {
          read = await readMessageFile(file, maxMessageBytes, ready.count, ready.settled);
        } catch (error) {
          if (isErrno(error, 'ENOENT')) continue; // claimed meanwhile
          if (!(error instanceof CorruptFileError)) throw error;
          onSkip?.(file, error.message);
          continue;
        }
        for (const record of read.records) {
          if (found.length >= limit) break;
          if (record === null) continue; // acked or nacked already, or another part's (an envelope)
          found.push({
            id: ready.count === 1 ? ready.id : record.attributes.id,
            data: record.data,
            body: record.payload,
            codec: record.codec,
            attempts: ready.attempt,
            priority: ready.priority,
            enqueuedAt: record.attributes.enqueuedAt,
            visibleAt: ready.visibleAt,
            headers: Object.freeze({ ...(record.attributes.headers ?? {}) }),
            topic: typeof record.attributes.topic === 'string' ? record.attributes.topic : undefined,
            file,
          });
        }
      }
    }
  } catch (error) {
    throw storageError(error, `peek at group ${group}`);
  }
  return found;
}
