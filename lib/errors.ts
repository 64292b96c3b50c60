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

/**
 * The spool is owned by another user or writable by others, so its contents cannot be trusted
 * (see the `strictModes` option).
 */
export class SpoolUnsafeError extends SpoolqError {
  override name = 'SpoolUnsafeError';
  override readonly code = 'ESPOOL_UNSAFE';
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

/**
 * The file system failed an operation on the spool while consuming or inspecting it (EIO,
 * EACCES, EROFS, ENOSPC…). The `cause` is the system error. Nothing was lost: a claim that
 * failed leaves the message where it was, and a lease that cannot be settled expires.
 */
export class StorageError extends SpoolqError {
  override name = 'StorageError';
  override readonly code = 'ESTORAGE';
}

/** The queue handle was closed. */
export class ClosedError extends SpoolqError {
  override name = 'ClosedError';
  override readonly code = 'ECLOSED';
}

/** No group of that name exists in the spool (bind, unbind, stats of another group). */
export class GroupNotFoundError extends SpoolqError {
  override name = 'GroupNotFoundError';
  override readonly code = 'EGROUP_NOT_FOUND';
}

/** The lock was not acquired within `timeoutMs`. Nothing is held. */
export class LockTimeoutError extends SpoolqError {
  override name = 'LockTimeoutError';
  override readonly code = 'ELOCK_TIMEOUT';
}

/**
 * The lock was lost while held (this process was paused past `staleMs`, or its lock directory
 * was removed): another holder may have it now. Stop writing to what the lock protects.
 */
export class LockCompromisedError extends SpoolqError {
  override name = 'LockCompromisedError';
  override readonly code = 'ELOCK_COMPROMISED';
}

/** Whether `error` is a Node system error with one of `codes`. */
export function isErrno(error: unknown, ...codes: string[]): error is NodeJS.ErrnoException {
  return error instanceof Error && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

/** System errors that mean "this process may not write here". */
export const NOT_WRITABLE_CODES = ['EROFS', 'EACCES', 'EPERM'];

/** What to do about a system error, in words, for the messages of typed errors. */
export function ioHint(code: string): string {
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'the disk is full: free space, then try again';
  if (NOT_WRITABLE_CODES.includes(code)) return 'the spool is not writable by this process';
  return 'check the disk';
}

/**
 * A system error (it has a `syscall`) from `action` becomes a StorageError; anything else (a
 * SpoolqError, an abort reason) is returned as it is.
 */
export function storageError(error: unknown, action: string): unknown {
  if (error instanceof SpoolqError || !(error instanceof Error) || (error as NodeJS.ErrnoException).syscall === undefined) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  return new StorageError(`Cannot ${action}: ${code} (${error.message}); ${ioHint(code)}`, { cause: error });
}
