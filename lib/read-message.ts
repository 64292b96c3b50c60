/**
 * Reads and verifies one message file as a consumer judges it, without following a symlink:
 * the consumer's claim, peek() and fsck() all read through here, so they never disagree on
 * what is corrupt.
 *
 * A small file is read with synchronous calls on the JS thread. Its open, fstat, read and close
 * take ~10 µs each from the page cache, while a round trip through libuv's thread pool costs
 * 50–100 µs of CPU here (bench/README.md, results of 2026-11-27). A large file goes through the pool,
 * so a big message never stalls the event loop for long.
 */
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { decodePayload } from './codec.js';
import { OPEN_NO_FOLLOW, SYNC_IO_MAX_BYTES } from './durable-fs.js';
import { isErrno } from './errors.js';
import {
  CorruptFileError,
  type DecodedRecord,
  decodeRecords,
  HEADER_BYTES,
  MAX_ATTRIBUTE_BYTES,
  MAX_ENVELOPE_BYTES,
} from './message-file.js';

/** A file over what maxMessageBytes allows: a consumer quarantines it unread ('too-large'). */
export class TooLargeFileError extends CorruptFileError {
  override name = 'TooLargeFileError';
}

export interface ReadRecord extends DecodedRecord {
  /** The payload decoded by its codec (JSON parsed for 'json'). */
  data: unknown;
}

export interface ReadMessage {
  /** One record for a message file; 2..128 for an envelope (null: settled, not read). */
  records: Array<ReadRecord | null>;
  dev: number;
  ino: number;
  size: number;
}

/**
 * Reads a message file, or an envelope of `count` records (its name says how many), but for the
 * records `settled` says were settled.
 * CorruptFileError (TooLargeFileError past `maxMessageBytes`) when the file is not valid; a
 * system error when it cannot be read.
 */
export async function readMessageFile(path: string, maxMessageBytes: number, count = 1, settled = 0n): Promise<ReadMessage> {
  let fd: number;
  try {
    fd = openSync(path, OPEN_NO_FOLLOW);
  } catch (error) {
    if (isErrno(error, 'ELOOP')) throw new CorruptFileError('a symbolic link, not a message file (never followed)');
    if (isErrno(error, 'ENXIO', 'ENODEV')) throw new CorruptFileError('not a regular file (a socket or a device)');
    throw error;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new CorruptFileError('not a regular file');
    if (count === 1 && info.size > maxMessageBytes + HEADER_BYTES + MAX_ATTRIBUTE_BYTES) {
      throw new TooLargeFileError(`${info.size} bytes, over what maxMessageBytes (${maxMessageBytes}) allows; not read`);
    }
    if (count > 1 && info.size > MAX_ENVELOPE_BYTES)
      throw new CorruptFileError(`an envelope of ${info.size} bytes, over ${MAX_ENVELOPE_BYTES}`);
    const buffer = Buffer.allocUnsafe(info.size);
    let offset = 0;
    while (offset < buffer.length) {
      const length = buffer.length - offset;
      const bytesRead =
        info.size <= SYNC_IO_MAX_BYTES
          ? readSync(fd, buffer, offset, length, offset)
          : (await readAsync(fd, buffer, offset, length, offset)).bytesRead;
      if (bytesRead === 0) throw new CorruptFileError(`truncated while reading at byte ${offset}`);
      offset += bytesRead;
    }
    try {
      const records = decodeRecords(buffer, count, settled).map((record, i) =>
        record === null ? null : readRecord(record, count > 1 ? i : null, maxMessageBytes),
      );
      return { records, dev: info.dev, ino: info.ino, size: info.size };
    } catch (error) {
      if (error instanceof CorruptFileError && count > 1) error.envelope = buffer;
      throw error;
    }
  } finally {
    closeSync(fd);
  }
}

const readAsync = promisify(read);

/**
 * A decoded record as a consumer takes it: its payload decoded by its codec. `index` is its
 * place in an envelope (null for a message file), for the reason. An envelope's record over
 * `maxMessageBytes` is refused here (a message file is, by its size, before it is read).
 */
export function readRecord(record: DecodedRecord, index: number | null, maxMessageBytes: number): ReadRecord {
  const where = index === null ? '' : `record ${index}: `;
  if (index !== null && record.payload.length > maxMessageBytes) {
    throw new TooLargeFileError(`${where}${record.payload.length} bytes, over maxMessageBytes (${maxMessageBytes})`);
  }
  try {
    return { ...record, data: decodePayload(record.codec, record.payload) };
  } catch {
    throw new CorruptFileError(`${where}the payload is not valid JSON although its CRC matches`);
  }
}
