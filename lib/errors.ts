/**
 * Every failure a caller can act on is a `SpoolqError` with a stable `code`.
 * Expected races (another consumer claimed a message first) are not errors.
 */
export class SpoolqError extends Error {
  override name = 'SpoolqError';
  readonly code: string = 'ESPOOLQ';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An option, a push option or an argument is invalid. Nothing was written. */
export class InvalidOptionError extends SpoolqError {
  override name = 'InvalidOptionError';
  override readonly code = 'EINVALID_OPTION';
}

/** A group or other name would escape the spool or is malformed. Nothing was written. */
export class InvalidNameError extends SpoolqError {
  override name = 'InvalidNameError';
  override readonly code = 'EINVALID_NAME';
}

/** The directory is not a spoolq spool, or was written by an unknown format version. */
export class SpoolFormatError extends SpoolqError {
  override name = 'SpoolFormatError';
  override readonly code = 'ESPOOL_FORMAT';
}

/** The spool path cannot be used: it is a file, or it cannot be created or read. */
export class SpoolPathError extends SpoolqError {
  override name = 'SpoolPathError';
  override readonly code = 'ESPOOL_PATH';
}

/** The encoded message is larger than `maxMessageBytes`. Nothing was written. */
export class MessageTooLargeError extends SpoolqError {
  override name = 'MessageTooLargeError';
  override readonly code = 'EMSG_TOO_LARGE';
}

/** The data cannot be encoded by the queue's codec. Nothing was written. */
export class MessageEncodeError extends SpoolqError {
  override name = 'MessageEncodeError';
  override readonly code = 'EMSG_ENCODE';
}

/**
 * The publish failed before the message became visible (for example ENOSPC or EIO on the
 * data sync). Nothing was published: retrying with the same data is safe.
 */
export class PublishError extends SpoolqError {
  override name = 'PublishError';
  override readonly code = 'EPUBLISH';
}

/**
 * A directory fsync failed after the message became visible: whether it survives a power loss
 * is unknown. The queue refuses further publishes (fail-stop); restart the process.
 */
export class DurabilityError extends SpoolqError {
  override name = 'DurabilityError';
  override readonly code = 'EDURABILITY';
}

/** The lease was lost (it expired and the message was returned or redelivered). Nothing changed. */
export class LeaseLostError extends SpoolqError {
  override name = 'LeaseLostError';
  override readonly code = 'ELEASE_LOST';
}

/** The message was already acked or nacked by this handle. */
export class MessageSettledError extends SpoolqError {
  override name = 'MessageSettledError';
  override readonly code = 'EMSG_SETTLED';
}

/** The queue handle was closed. */
export class ClosedError extends SpoolqError {
  override name = 'ClosedError';
  override readonly code = 'ECLOSED';
}

/** Re-raise a Node fs error as-is unless it is one of the listed codes. */
export function isErrno(error: unknown, ...codes: string[]): error is NodeJS.ErrnoException {
  return error instanceof Error && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}
