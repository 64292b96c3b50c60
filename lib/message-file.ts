/**
 * The format of one message file:
 *
 *   offset  size  field
 *   0       4     magic "SPQM"
 *   4       1     format version (1)
 *   5       1     codec: 0 = json, 1 = raw
 *   6       2     reserved, zero
 *   8       4     attributes length A (uint32 LE)
 *   12      4     payload length P (uint32 LE)
 *   16      4     CRC32 of every other byte: 0 .. 16, then 20 .. 20+A+P
 *   20      A     attributes: UTF-8 JSON { id, enqueuedAt, contentType?, headers?, topic? }
 *   20+A    P     payload
 *
 * A file is valid only if its size is exactly 20 + A + P and the CRC matches, so a truncated,
 * zero-length or bit-flipped file is always detected before delivery.
 *
 * An envelope (several messages pushed together, one file: one inode, one fdatasync, one
 * rename) is 2..128 such records one after the other, each with its own lengths and CRC; its
 * name says how many (names.ts). It is valid only if it holds exactly that many valid records
 * and nothing after them.
 */
import { crc32 } from 'node:zlib';
import { MAX_ENVELOPE_RECORDS } from './names.js';
import type { CodecName } from './options.js';

const MAGIC = Buffer.from('SPQM', 'latin1');
const VERSION = 1;
export const HEADER_BYTES = 20;
/** Attributes are small (id, time, user headers); this bounds what a reader allocates. */
export const MAX_ATTRIBUTE_BYTES = 64 * 1024;
/** The most bytes of records a publisher puts in one envelope; a larger message gets a file of its own. */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
const ID = /^[0-9a-f]{24}$/;

export interface MessageAttributes {
  id: string;
  enqueuedAt: number;
  contentType?: string;
  headers?: Record<string, string>;
  topic?: string;
}

export interface DecodedFile {
  codec: CodecName;
  attributes: MessageAttributes;
  payload: Buffer;
}

/** Why a file is not a valid message: becomes the quarantine reason. */
export class CorruptFileError extends Error {
  override name = 'CorruptFileError';
  /** An envelope's bytes, when it was read whole: its good records can still be saved. */
  envelope?: Buffer;
}

/**
 * A record to be written: its attributes already serialized (attributesJson), so a batch of
 * records is encoded straight into one buffer (encodeRecords).
 */
export interface OutgoingRecord {
  codec: CodecName;
  attrs: string;
  /** Byte length of `attrs` in UTF-8. */
  attrsBytes: number;
  payload: Buffer;
}

/** The size of a record on disk. */
const recordSize = (r: OutgoingRecord): number => HEADER_BYTES + r.attrsBytes + r.payload.length;

/**
 * A message file (one record) or an envelope (several), in one buffer from `allocate`: no
 * per-record copy. `offsets` are where each record starts, then where the last one ends.
 */
export function encodeRecords(
  records: readonly OutgoingRecord[],
  allocate: (size: number) => Buffer = Buffer.allocUnsafe,
): { file: Buffer; offsets: number[] } {
  const offsets = [0];
  let size = 0;
  for (const r of records) {
    size += recordSize(r);
    offsets.push(size);
  }
  const file = allocate(size);
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as OutgoingRecord;
    const offset = offsets[i] as number;
    const codec = r.codec === 'raw' ? 1 : 0;
    // Field by field, in JS: each Buffer method that crosses into C++ (copy, compare) costs more
    // than the few bytes it moves, and this runs for every message of a pushMany.
    writeHeader(file, offset, codec, r.attrsBytes, r.payload.length);
    // latin1 is the faster write, and the same bytes when every character is ASCII.
    file.write(r.attrs, offset + HEADER_BYTES, r.attrsBytes === r.attrs.length ? 'latin1' : 'utf8');
    file.set(r.payload, offset + HEADER_BYTES + r.attrsBytes);
    const crc = crc32(file.subarray(offset + HEADER_BYTES, offsets[i + 1]), headerChecksum(codec, r.attrsBytes, r.payload.length));
    file.writeUInt32LE(crc, offset + 16);
  }
  return { file, offsets };
}

/** "SPQM" as a little-endian uint32. */
const MAGIC_LE = MAGIC.readUInt32LE(0);

/** Bytes 0..16 of a record header: magic, version, codec, reserved, the two lengths. */
function writeHeader(file: Buffer, offset: number, codec: number, attrsBytes: number, payloadBytes: number): void {
  file.writeUInt32LE(MAGIC_LE, offset);
  file[offset + 4] = VERSION;
  file[offset + 5] = codec;
  file.writeUInt16LE(0, offset + 6);
  file.writeUInt32LE(attrsBytes, offset + 8);
  file.writeUInt32LE(payloadBytes, offset + 12);
}

/** The last header checksummed: the records of a batch tend to have the same lengths. */
const lastHeader = { codec: -1, attrsBytes: -1, payloadBytes: -1, crc: 0 };
const headerBytes = Buffer.alloc(16);

/** The CRC of bytes 0..16 of a record header: the first part of its checksum. */
function headerChecksum(codec: number, attrsBytes: number, payloadBytes: number): number {
  const last = lastHeader;
  if (last.codec !== codec || last.attrsBytes !== attrsBytes || last.payloadBytes !== payloadBytes) {
    writeHeader(headerBytes, 0, codec, attrsBytes, payloadBytes);
    Object.assign(last, { codec, attrsBytes, payloadBytes, crc: crc32(headerBytes) });
  }
  return last.crc;
}

/**
 * The attributes of a new message as JSON, the same as JSON.stringify of a MessageAttributes.
 * Written by hand because JSON.stringify of a fresh object per message was a tenth of
 * pushMany's time; `id` is hex and `enqueuedAt` an integer, so they need no escaping, and
 * `extra` is the JSON of the other members (`,"headers":{…},"topic":"…"`), made once per push.
 */
export function attributesJson(id: string, enqueuedAt: number, extra: string): string {
  return `{"id":"${id}","enqueuedAt":${enqueuedAt}${extra}}`;
}

/** The CRC covers the whole file but its own field, so no flipped bit goes unnoticed. */
function checksum(file: Buffer): number {
  return crc32(file.subarray(HEADER_BYTES), crc32(file.subarray(0, 16)));
}

/** Checks the fixed header against the file size, before the rest is read. */
export function checkHeader(header: Buffer, fileSize: number): { attrsLength: number; payloadLength: number } {
  if (fileSize < HEADER_BYTES) throw new CorruptFileError(`truncated: ${fileSize} bytes, shorter than the header`);
  if (!header.subarray(0, 4).equals(MAGIC)) throw new CorruptFileError('not a spoolq message: bad magic');
  const version = header.readUInt8(4);
  if (version !== VERSION) throw new CorruptFileError(`unknown message format version ${version}`);
  const attrsLength = header.readUInt32LE(8);
  const payloadLength = header.readUInt32LE(12);
  if (attrsLength > MAX_ATTRIBUTE_BYTES) throw new CorruptFileError(`attributes length ${attrsLength} is implausible`);
  const expected = HEADER_BYTES + attrsLength + payloadLength;
  if (expected !== fileSize) {
    throw new CorruptFileError(`length mismatch: header says ${expected} bytes, file has ${fileSize}`);
  }
  return { attrsLength, payloadLength };
}

export function decodeFile(file: Buffer): DecodedFile {
  const { attrsLength } = checkHeader(file, file.length);
  const stored = file.readUInt32LE(16);
  const actual = checksum(file);
  if (stored !== actual) throw new CorruptFileError(`CRC mismatch: stored ${stored}, computed ${actual}`);
  return decodeChecked(file, attrsLength);
}

/** One record of a file, with its bytes (for a nack, which writes it out as a message file of its own). */
export interface DecodedRecord extends DecodedFile {
  bytes: Buffer;
}

/**
 * The `count` records of a message file (1) or an envelope; CorruptFileError if it holds anything
 * else. The records of `skip` (a settled bitmap: acked, or another part's, see names.ts) are only
 * delimited, not checked or decoded: null.
 */
export function decodeRecords(file: Buffer, count: number, skip = 0n): Array<DecodedRecord | null> {
  if (count === 1) return [{ ...decodeFile(file), bytes: file }];
  const records: Array<DecodedRecord | null> = [];
  // Every record left is settled in this name: what follows is the concern of the names that
  // hold them (a part of the envelope, or a record moved out of it, judged by its own records).
  const restSettled = () => records.length < count && skip >> BigInt(records.length) === (1n << BigInt(count - records.length)) - 1n;
  let offset = 0;
  while (offset < file.length) {
    if (restSettled()) break;
    if (records.length === count) {
      // Bytes after the last record: reported by a name that holds every record, the first to
      // read the file whole (Leases #quarantine); a part, or a record moved out, reads past them.
      if (skip !== 0n) break;
      throw new CorruptFileError(`envelope: ${file.length - offset} bytes after its ${count} records`);
    }
    const rest = file.subarray(offset);
    if (rest.length < HEADER_BYTES) throw new CorruptFileError(`envelope: record ${records.length} truncated to ${rest.length} bytes`);
    const length = HEADER_BYTES + rest.readUInt32LE(8) + rest.readUInt32LE(12);
    if ((skip & (1n << BigInt(records.length))) !== 0n && length <= rest.length && rest.subarray(0, 4).equals(MAGIC)) {
      records.push(null);
      offset += length;
      continue;
    }
    const bytes = rest.subarray(0, Math.min(length, rest.length));
    try {
      records.push(decodeRecord(bytes));
    } catch (error) {
      if (error instanceof CorruptFileError) throw new CorruptFileError(`envelope: record ${records.length}: ${error.message}`);
      throw error;
    }
    offset += length;
  }
  if (restSettled()) while (records.length < count) records.push(null);
  if (records.length !== count) throw new CorruptFileError(`envelope: ${records.length} records where its name says ${count}`);
  return records;
}

/** One record of an envelope, with a valid message id (the name says only the first one's). */
function decodeRecord(bytes: Buffer): DecodedRecord {
  const record = decodeFile(bytes);
  if (typeof record.attributes.id !== 'string' || !ID.test(record.attributes.id)) throw new CorruptFileError('no valid message id');
  return { ...record, bytes };
}

/** A damaged envelope, told apart: each record whose bounds can be read, good or bad, then what is left. */
export interface EnvelopeParts {
  records: Array<{ index: number; bytes: Buffer } & ({ record: DecodedRecord } | { error: CorruptFileError })>;
  /**
   * Bytes after the last record delimited: a truncated or garbled tail, or whatever follows the
   * `count` records the envelope's name says it holds (appended by something else).
   */
  rest: Buffer | null;
}

/** Splits a damaged envelope of `count` records into them, so that the good ones are not lost with the bad. */
export function envelopeParts(file: Buffer, count: number): EnvelopeParts {
  const parts: EnvelopeParts = { records: [], rest: null };
  let offset = 0;
  while (offset < file.length) {
    const rest = file.subarray(offset);
    const index = parts.records.length;
    if (rest.length < HEADER_BYTES || !rest.subarray(0, 4).equals(MAGIC) || index >= Math.min(count, MAX_ENVELOPE_RECORDS)) {
      parts.rest = rest;
      break;
    }
    const length = HEADER_BYTES + rest.readUInt32LE(8) + rest.readUInt32LE(12);
    if (length > rest.length) {
      parts.rest = rest;
      break;
    }
    const bytes = rest.subarray(0, length);
    try {
      parts.records.push({ index, bytes, record: decodeRecord(bytes) });
    } catch (error) {
      if (!(error instanceof CorruptFileError)) throw error;
      parts.records.push({ index, bytes, error });
    }
    offset += length;
  }
  return parts;
}

function decodeChecked(file: Buffer, attrsLength: number): DecodedFile {
  let attributes: MessageAttributes;
  try {
    attributes = JSON.parse(file.toString('utf8', HEADER_BYTES, HEADER_BYTES + attrsLength));
  } catch {
    throw new CorruptFileError('attributes are not valid JSON');
  }
  return {
    codec: file.readUInt8(5) === 1 ? 'raw' : 'json',
    attributes,
    payload: file.subarray(HEADER_BYTES + attrsLength),
  };
}
