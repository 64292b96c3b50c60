/**
 * Dead letters of a group: messages that ran out of attempts, and quarantined files (bad
 * names, bad length or CRC, symlinks, directories, oversized files). Each is kept, never
 * silently dropped: `dead/<name>` plus `dead/<name>.why`, a JSON reason.
 *
 * The file is moved first and the reason written after, so a race between two consumers
 * quarantining the same file leaves no orphan reason; a crash between the two steps leaves
 * a dead letter whose reason reads "unknown".
 */
import { randomBytes } from 'node:crypto';
import { chmod, type FileHandle, open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type Modes, OPEN_NO_FOLLOW, unlinkIfPresent } from './durable-fs.js';
import { isErrno } from './errors.js';
import { checkHeader, HEADER_BYTES, MAX_ATTRIBUTE_BYTES } from './message-file.js';
import { parseReady } from './names.js';

export type DeadCode =
  /** nack() when the last attempt failed. */
  | 'max-attempts'
  /** The lease of the last attempt expired. */
  | 'lease-expired'
  /** The file is not a valid message (length, CRC, magic, not a regular file, symlink). */
  | 'corrupt'
  /** The file is larger than maxMessageBytes allows; it was not read. */
  | 'too-large'
  /** The name is not a spoolq name. */
  | 'bad-name';

export interface DeadReason {
  code: DeadCode;
  reason: string;
  at: number;
  /** For quarantined strangers: the name the file had. */
  originalName?: string;
}

export interface DeadLetter {
  /** The message id, or for a file without a valid name, the dead entry's name. */
  id: string;
  /** Why it is here, in words. */
  reason: string;
  code: DeadCode | 'unknown';
  /** Deliveries made before it died (0 when unknown). */
  attempts: number;
  /** When it was first pushed, or null when the file cannot be read. */
  enqueuedAt: number | null;
  priority: number | null;
  /** When it became a dead letter, or null when unknown. */
  deadAt: number | null;
  /** The file name inside the group's dead/ directory. */
  file: string;
}

const WHY = '.why';

/** Moves `from` into `deadDir` with a reason. Returns false if another process moved it first. */
export async function moveToDead(
  from: string,
  deadDir: string,
  deadName: string | null,
  why: Omit<DeadReason, 'at'>,
  modes: Modes,
): Promise<boolean> {
  const name = deadName ?? `bad-${randomBytes(6).toString('hex')}`;
  const target = join(deadDir, name);
  try {
    await rename(from, target);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    if (!basename(from).includes('\uFFFD') || !(await renameByRawName(from, target))) return false;
  }
  await writeReason(target, why, modes);
  return true;
}

/** Writes the reason of the dead letter at `deadPath` (best effort: without it, the reason reads "unknown"). */
export async function writeReason(deadPath: string, why: Omit<DeadReason, 'at'>, modes: Modes): Promise<void> {
  const reason: DeadReason = { ...why, at: Date.now() };
  await writeFile(`${deadPath}${WHY}`, JSON.stringify(reason), { mode: modes.file })
    .then(() => (modes.file & 0o070 ? chmod(`${deadPath}${WHY}`, modes.file) : undefined))
    .catch(() => {});
}

export async function listDeadLetters(deadDir: string): Promise<DeadLetter[]> {
  const names = (await readdir(deadDir)).filter((n) => !n.endsWith(WHY) && !n.startsWith('.')).sort();
  const letters: DeadLetter[] = [];
  for (const file of names) {
    const why = await readReason(join(deadDir, file));
    const ready = parseReady(file);
    letters.push({
      id: ready?.id ?? file,
      reason: why?.reason ?? 'unknown (the reason was not recorded)',
      code: why?.code ?? 'unknown',
      attempts: ready?.attempt ?? 0,
      enqueuedAt: await readEnqueuedAt(join(deadDir, file)),
      priority: ready?.priority ?? null,
      deadAt: why?.at ?? null,
      file,
    });
  }
  return letters;
}

/**
 * A name that is not valid UTF-8 reaches us decoded with U+FFFD in place of its bad bytes, and
 * no file has that name: find the entry by its raw bytes and rename it by them.
 */
async function renameByRawName(from: string, target: string): Promise<boolean> {
  const dir = dirname(from);
  for (const raw of await readdir(dir, { encoding: 'buffer' })) {
    if (raw.toString('utf8') !== basename(from)) continue;
    try {
      await rename(Buffer.concat([Buffer.from(`${dir}/`), raw]), target);
      return true;
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
  }
  return false;
}

/** Removes a dead letter's reason file (after the letter itself moved or was removed). */
export async function removeReason(deadPath: string): Promise<void> {
  try {
    unlinkIfPresent(`${deadPath}${WHY}`);
  } catch {}
}

async function readReason(deadPath: string): Promise<DeadReason | null> {
  try {
    return JSON.parse(await readFile(`${deadPath}${WHY}`, 'utf8')) as DeadReason;
  } catch {
    return null;
  }
}

/**
 * Reads just the attributes of a dead file for its enqueue time; null if it is not readable. For
 * a name of an envelope (a record moved out of one, or a whole part) they are those of the first
 * record the name holds, found by walking the record headers before it.
 */
async function readEnqueuedAt(path: string): Promise<number | null> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, OPEN_NO_FOLLOW);
    const { size } = await handle.stat();
    const ready = parseReady(basename(path));
    const settled = ready?.settled ?? 0n;
    // The records before the first this name holds: their headers only, to skip them.
    let offset = 0;
    const header = Buffer.alloc(HEADER_BYTES);
    for (let index = 0; (settled >> BigInt(index)) & 1n; index++) {
      await handle.read(header, 0, HEADER_BYTES, offset);
      offset += HEADER_BYTES + header.readUInt32LE(8) + header.readUInt32LE(12);
    }
    const head = Buffer.alloc(Math.max(0, Math.min(size - offset, HEADER_BYTES + MAX_ATTRIBUTE_BYTES)));
    await handle.read(head, 0, head.length, offset);
    // A message file is exactly one record; in an envelope the record ends where its header says.
    const own = head.length >= HEADER_BYTES ? HEADER_BYTES + head.readUInt32LE(8) + head.readUInt32LE(12) : head.length;
    const { attrsLength } = checkHeader(head, (ready?.count ?? 1) > 1 ? Math.min(own, size - offset) : size);
    const attrs = JSON.parse(head.toString('utf8', HEADER_BYTES, HEADER_BYTES + attrsLength));
    return typeof attrs.enqueuedAt === 'number' ? attrs.enqueuedAt : null;
  } catch {
    return null;
  } finally {
    await handle?.close().catch(() => {});
  }
}
