/**
 * An independent validator of message files, written from the format documented in the header
 * comment of lib/message-file.ts. It deliberately imports nothing from lib/: specs use it as a
 * second opinion on what the library wrote, not the library's own decoder.
 *
 *   offset  size  field
 *   0       4     magic "SPQM"
 *   4       1     format version (1)
 *   5       1     codec: 0 = json, 1 = raw
 *   6       2     reserved, zero
 *   8       4     attributes length A (uint32 LE)
 *   12      4     payload length P (uint32 LE)
 *   16      4     CRC32 of bytes 0 .. 16, then 20 .. 20+A+P
 *   20      A     attributes: UTF-8 JSON { id, enqueuedAt, ... }
 *   20+A    P     payload
 *
 * An envelope is 2..128 such records back to back, nothing after them; its name ends in
 * =<count:2 hex>-<settled:32 hex>, and bit i of settled marks record i as acked or nacked.
 */
import { crc32 } from 'node:zlib';

/**
 * A file in groups/<g>/ready/<bucket>/: <P>-<visibleAt:12 hex>-<id:24 hex>-<attempt:4 hex>, then
 * for an envelope =<count:2 hex>-<settled:32 hex>. Group 1 is the id (an envelope's first record's,
 * or for one part of an envelope, named apart, its first record's: the records before it are
 * settled in its name), 2 and 3 the envelope's count and settled bitmap.
 */
export const READY_NAME = /^[0-9]-[0-9a-f]{12}-([0-9a-f]{24})-[0-9a-f]{4}(?:=([0-9a-f]{2})-([0-9a-f]{32}))?$/;
/** A bucket directory in groups/<g>/ready/: <P>-<bucket:10 hex>. */
export const BUCKET_NAME = /^[0-9]-[0-9a-f]{10}$/;
/** A file in groups/<g>/leased/: <deadline:12 hex>-<ready name>~<token:16 hex>; group 1 is the ready name. */
export const LEASED_NAME = /^[0-9a-f]{12}-([0-9]-[0-9a-f]{12}-[0-9a-f]{24}-[0-9a-f]{4}(?:=[0-9a-f]{2}-[0-9a-f]{32})?)~[0-9a-f]{16}$/;

export interface MessageFile {
  /** The id, from the ready name (the attributes carry the same). */
  id: string;
  /** Byte 5: 0 = json, 1 = raw. Which one is expected is the caller's check. */
  codec: number;
  attributes: Record<string, unknown>;
  payload: Buffer;
}

/**
 * Checks one visible file whose ready name is `readyName` (for a leased file, the ready name
 * inside its leased name), a message file or an envelope; returns the messages it still holds
 * (an envelope's settled records left out). Throws an Error with the reason when it is not complete.
 */
export function checkSpoolFile(readyName: string, file: Buffer): MessageFile[] {
  const name = READY_NAME.exec(readyName);
  if (!name) throw new Error(`not a ready name: ${readyName}`);
  if (name[2] === undefined) return [checkRecord(name[1] as string, file)];
  const count = Number.parseInt(name[2], 16);
  const settled = BigInt(`0x${name[3]}`);
  if (count < 2 || count > 128) throw new Error(`an envelope of ${count} records`);
  const held: MessageFile[] = [];
  const ids: string[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (file.length - offset < 20) throw new Error(`record ${i}: ${file.length - offset} bytes, shorter than a header`);
    const length = 20 + file.readUInt32LE(offset + 8) + file.readUInt32LE(offset + 12);
    const bytes = file.subarray(offset, offset + length);
    const record = wrap(i, () => checkRecord(String(JSON.parse(bytes.toString('utf8', 20, 20 + bytes.readUInt32LE(8))).id), bytes));
    ids.push(record.id);
    if (((settled >> BigInt(i)) & 1n) === 0n) held.push(record);
    offset += length;
  }
  if (offset !== file.length) throw new Error(`${file.length - offset} bytes after the ${count} records of the envelope`);
  const named = ids.indexOf(name[1] as string);
  if (named === -1) throw new Error(`the name's id ${name[1]} is the id of none of its records`);
  const before = (1n << BigInt(named)) - 1n;
  if ((settled & before) !== before) throw new Error(`the name's id is record ${named}'s, but a record before it is not settled`);
  return held;
}

function wrap<R>(i: number, fn: () => R): R {
  try {
    return fn();
  } catch (error) {
    throw new Error(`record ${i}: ${(error as Error).message}`);
  }
}

/** Checks one message file (or one record of an envelope) that should carry message `id`. */
function checkRecord(id: string, file: Buffer): MessageFile {
  if (file.length < 20) throw new Error(`${file.length} bytes, shorter than the 20-byte header`);
  if (file.toString('latin1', 0, 4) !== 'SPQM') throw new Error(`bad magic ${JSON.stringify(file.toString('latin1', 0, 4))}`);
  if (file[4] !== 1) throw new Error(`format version ${file[4]}`);
  const codec = file[5] as number;
  if (file.readUInt16LE(6) !== 0) throw new Error('reserved bytes are not zero');
  const attrsLength = file.readUInt32LE(8);
  const payloadLength = file.readUInt32LE(12);
  if (file.length !== 20 + attrsLength + payloadLength) {
    throw new Error(`length: header says 20 + ${attrsLength} + ${payloadLength}, file has ${file.length} bytes`);
  }
  // CRC32 of every byte but its own field: 0 .. 16, then 20 .. end.
  const stored = file.readUInt32LE(16);
  const actual = crc32(file.subarray(20), crc32(file.subarray(0, 16)));
  if (stored !== actual) throw new Error(`CRC: stored ${stored}, computed ${actual}`);
  const parsed: unknown = JSON.parse(file.toString('utf8', 20, 20 + attrsLength));
  const attributes = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (attributes.id !== id) throw new Error(`attributes id ${String(attributes.id)} differs from the name's id ${id}`);
  return { id, codec, attributes, payload: file.subarray(20 + attrsLength) };
}

/**
 * The messages a consumer can still deliver from a damaged envelope: walking from the start,
 * every record whose header is there and whose length fits in the file, and that is valid on
 * its own. The walk stops at the first header that is missing or garbled, or whose length runs
 * past the end of the file. Empty for a message file, or an envelope with no readable record.
 */
export function salvageSpoolFile(readyName: string, file: Buffer): MessageFile[] {
  const name = READY_NAME.exec(readyName);
  if (!name || name[2] === undefined) return [];
  const settled = BigInt(`0x${name[3]}`);
  const saved: MessageFile[] = [];
  let offset = 0;
  for (let i = 0; offset < file.length && i < 128; i++) {
    if (file.length - offset < 20 || file.toString('latin1', offset, offset + 4) !== 'SPQM') break;
    const length = 20 + file.readUInt32LE(offset + 8) + file.readUInt32LE(offset + 12);
    if (offset + length > file.length) break;
    const bytes = file.subarray(offset, offset + length);
    offset += length;
    if (((settled >> BigInt(i)) & 1n) === 1n) continue;
    try {
      const id = String(JSON.parse(bytes.toString('utf8', 20, 20 + bytes.readUInt32LE(8))).id);
      saved.push(checkRecord(id, bytes));
    } catch {
      // a bad record: it becomes a dead letter
    }
  }
  return saved;
}
