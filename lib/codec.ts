/** Turns user data into payload bytes and back, for the queue's `codec` option. */
import { MessageEncodeError } from './errors.js';
import type { CodecName } from './options.js';

export function encodePayload(codec: CodecName, data: unknown): Buffer {
  if (codec === 'raw') {
    if (typeof data === 'string') return Buffer.from(data, 'utf8');
    if (Buffer.isBuffer(data)) return data;
    if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    throw new MessageEncodeError(
      `The raw codec takes a string or a Uint8Array, got ${data === null ? 'null' : typeof data}; use codec 'json' for other values`,
    );
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (error) {
    throw new MessageEncodeError(
      `The message data cannot be serialized as JSON (${(error as Error).message}); pass plain JSON data or use codec 'raw'`,
      { cause: error },
    );
  }
  if (text === undefined) {
    throw new MessageEncodeError(`The message data (${typeof data}) has no JSON representation; pass plain JSON data or use codec 'raw'`);
  }
  return Buffer.from(text, 'utf8');
}

export function decodePayload(codec: CodecName, payload: Buffer): unknown {
  return codec === 'raw' ? payload : JSON.parse(payload.toString('utf8'));
}
