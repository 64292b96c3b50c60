/**
 * Reads and verifies one message file as a consumer judges it, without following a symlink:
 * the consumer's claim, peek() and fsck() all read through here, so they never disagree on
 * what is corrupt.
 */
import { decodePayload } from './codec.js';
import { openNoFollow } from './durable-fs.js';
import { isErrno } from './errors.js';
import { CorruptFileError, type DecodedFile, decodeFile, HEADER_BYTES, MAX_ATTRIBUTE_BYTES } from './message-file.js';

/** A file over what maxMessageBytes allows: a consumer quarantines it unread ('too-large'). */
export class TooLargeFileError extends CorruptFileError {
  override name = 'TooLargeFileError';
}

export interface ReadMessage extends DecodedFile {
  /** The payload decoded by its codec (JSON parsed for 'json'). */
  data: unknown;
  dev: number;
  ino: number;
  size: number;
}

/**
 * CorruptFileError (TooLargeFileError past `maxMessageBytes`) when the file is not a valid
 * message; a system error when it cannot be read.
 */
export async function readMessageFile(path: string, maxMessageBytes: number): Promise<ReadMessage> {
  let handle: Awaited<ReturnType<typeof openNoFollow>>;
  try {
    handle = await openNoFollow(path);
  } catch (error) {
    if (isErrno(error, 'ELOOP')) throw new CorruptFileError('a symbolic link, not a message file (never followed)');
    if (isErrno(error, 'ENXIO', 'ENODEV')) throw new CorruptFileError('not a regular file (a socket or a device)');
    throw error;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new CorruptFileError('not a regular file');
    if (info.size > maxMessageBytes + HEADER_BYTES + MAX_ATTRIBUTE_BYTES) {
      throw new TooLargeFileError(`${info.size} bytes, over what maxMessageBytes (${maxMessageBytes}) allows; not read`);
    }
    const buffer = Buffer.allocUnsafe(info.size);
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesRead } = await handle.read(buffer, offset, buffer.length - offset, offset);
      if (bytesRead === 0) throw new CorruptFileError(`truncated while reading at byte ${offset}`);
      offset += bytesRead;
    }
    const decoded = decodeFile(buffer);
    let data: unknown;
    try {
      data = decodePayload(decoded.codec, decoded.payload);
    } catch {
      throw new CorruptFileError('the payload is not valid JSON although its CRC matches');
    }
    return { ...decoded, data, dev: info.dev, ino: info.ino, size: info.size };
  } finally {
    await handle.close();
  }
}
