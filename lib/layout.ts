/**
 * The spool on disk:
 *
 *   <spool>/spoolq.json              format name, version and bucket size
 *   <spool>/tmp/                     files being written; never visible to consumers
 *   <spool>/groups/<group>/ready/<P>-<bucket>/<ready name>
 *   <spool>/groups/<group>/leased/<leased name>
 *   <spool>/groups/<group>/dead/<name> (+ <name>.why: the reason, JSON)
 *   <spool>/groups/<group>/doorbell/ one small file per producer, renamed per commit: the watch target
 *   <spool>/groups/<group>/topics/   the topic patterns the group is bound to (see bindings.ts)
 *   <spool>/groups/<group>/.acks-<token>  the acks of a leased part of an envelope (ack-files.ts)
 *
 * Opening is safe in several processes at once: every step is idempotent or a rename.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeEntries } from './bindings.js';
import { ensureDir, fsyncDir, GROUP_MODES, type Modes, makeDir, PRIVATE_MODES, writeNewFile } from './durable-fs.js';
import { InvalidOptionError, isErrno, SpoolFormatError, SpoolPathError, SpoolqError, SpoolUnsafeError } from './errors.js';

export const FORMAT_FILE = 'spoolq.json';
export const FORMAT_NAME = 'spoolq';
export const FORMAT_VERSION = 1;
/** Width of a ready bucket: bounds every directory listing to what arrives in this time. */
export const DEFAULT_BUCKET_MS = 10_000;

import { GROUP_NAME, type Share } from './options.js';

export interface SpoolFormat {
  format: typeof FORMAT_NAME;
  version: typeof FORMAT_VERSION;
  bucketMs: number;
  /** Absent in spools made before sharing existed: 'private'. */
  share?: Share;
}

export interface SpoolAccess {
  /** Sharing for a spool this call creates; for an existing one, must match if given. */
  share: Share | undefined;
  /** Refuse a spool owned by another user or writable by others (like ssh's StrictModes). */
  strictModes: boolean;
}

/**
 * The path of `name` in the directory `dir`, for the publish path: `dir` is a spool path (made
 * by path.join from a resolved root, so normalized) and `name` one of spoolq's own names, so
 * nothing is left to normalize. path.join normalizes all the same, and its five calls were a
 * quarter of a publish's JavaScript (1.7 of 6.6 µs, bench/README.md).
 */
export const entry = (dir: string, name: string): string => `${dir}/${name}`;

/** The prefix of the marker in groups/ that is renamed whenever the routes change. */
export const ROUTES_MARK = '.routes-';

export interface GroupPaths {
  readonly name: string;
  readonly root: string;
  readonly ready: string;
  readonly leased: string;
  readonly dead: string;
  readonly doorbell: string;
  readonly topics: string;
}

export class Spool {
  readonly tmp: string;
  readonly groups: string;

  constructor(
    readonly root: string,
    readonly bucketMs: number,
    /** Permission bits of everything this spool's handles create. */
    readonly modes: Modes,
  ) {
    this.tmp = join(root, 'tmp');
    this.groups = join(root, 'groups');
  }

  group(name: string): GroupPaths {
    const root = join(this.groups, name);
    return {
      name,
      root,
      ready: join(root, 'ready'),
      leased: join(root, 'leased'),
      dead: join(root, 'dead'),
      doorbell: join(root, 'doorbell'),
      topics: join(root, 'topics'),
    };
  }

  /** The names of the groups that exist now: a publish delivers to each of them. */
  async groupNames(): Promise<string[]> {
    return (await readdir(this.groups)).filter((n) => GROUP_NAME.test(n));
  }

  /**
   * Says that the routes changed (a group created or deleted, a binding added or removed), once
   * the change is done: renames the marker `groups/.routes-<random>` to a fresh name, so every
   * publisher's cached routes (routing.ts) are stale from now on. Not synced: caches live in
   * memory only. ENOENT means another process renamed it after our change: that serves too.
   */
  async routesChanged(): Promise<void> {
    const marks = (await readdir(this.groups)).filter((n) => n.startsWith(ROUTES_MARK));
    const fresh = join(this.groups, ROUTES_MARK + randomBytes(8).toString('hex'));
    if (marks.length === 0) {
      await writeNewFile(fresh, Buffer.alloc(0), false, this.modes);
      return;
    }
    await rename(join(this.groups, marks[0] as string), fresh).catch((error) => {
      if (!isErrno(error, 'ENOENT')) throw error;
    });
  }

  /** Whether the group exists (a half-made one never does: groups are renamed in whole). */
  hasGroup(name: string): Promise<boolean> {
    return isDirectory(this.group(name).doorbell);
  }

  /**
   * Creates a group if it is missing, bound to `patterns`. The group is built under tmp/,
   * bindings included, and renamed into groups/, so a publisher never sees a half-made group.
   * Resolves to whether this call created it.
   */
  async ensureGroup(name: string, sync: boolean, patterns: readonly string[]): Promise<boolean> {
    const paths = this.group(name);
    if (await this.hasGroup(name)) {
      // Whoever created it may have died before its fsync of groups/ (or seen it fail): sync
      // again, so that a group this handle publishes to is durable. One fsync per open.
      if (sync) await fsyncDir(this.groups);
      return false;
    }
    const staging = join(this.tmp, `group-${randomBytes(6).toString('hex')}`);
    await makeDir(staging, this.modes);
    for (const sub of ['ready', 'leased', 'dead', 'doorbell', 'topics']) await makeDir(join(staging, sub), this.modes);
    await writeEntries(this, join(staging, 'topics'), patterns, sync);
    if (sync) {
      await fsyncDir(join(staging, 'topics'));
      await fsyncDir(staging); // its subdirectories' entries, before it becomes visible
    }
    try {
      await rename(staging, paths.root);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      if (!isErrno(error, 'EEXIST', 'ENOTEMPTY')) throw error;
      // another process created it first; sync groups/ in case it has not yet, and say the
      // routes changed in case it has not yet either
      if (sync) await fsyncDir(this.groups);
      await this.routesChanged();
      return false;
    }
    if (sync) await fsyncDir(this.groups);
    // A new name in groups/ already changes every publisher's listing, but not a group deleted
    // and created again under the same name.
    await this.routesChanged();
    return true;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return false;
    throw error;
  }
}

/** Opens the spool at `dir`, creating it when the directory is missing or empty. */
export async function openSpool(dir: string, sync: boolean, access: SpoolAccess): Promise<Spool> {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new SpoolPathError(`The spool path must be a non-empty string, got ${String(dir)}`);
  }
  const root = resolve(dir);
  try {
    return await openOrCreate(root, sync, access);
  } catch (error) {
    if (error instanceof SpoolqError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new SpoolPathError(
      `Cannot open the spool at ${root}: ${code} (${(error as Error).message}); check that the path is a directory this user can read and write`,
      { cause: error },
    );
  }
}

async function openOrCreate(root: string, sync: boolean, access: SpoolAccess): Promise<Spool> {
  const requested = access.share === 'group' ? GROUP_MODES : PRIVATE_MODES;
  try {
    const info = await stat(root);
    if (!info.isDirectory()) {
      throw new SpoolPathError(`The spool path ${root} is not a directory; pass a directory path (it is created if missing)`);
    }
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    await mkdir(dirname(root), { recursive: true, mode: 0o755 });
    await ensureDir(root, dirname(root), sync, requested);
  }
  const format = (await readFormat(root)) ?? (await createFormat(root, sync, access.share ?? 'private', requested));
  const share = format.share ?? 'private';
  if (access.share !== undefined && access.share !== share) {
    throw new InvalidOptionError(
      `Invalid option \`share\`: the spool at ${root} was created with share '${share}', not '${access.share}'; omit the option to use the spool's`,
    );
  }
  if (access.strictModes) await checkModes(root, share);
  const spool = new Spool(root, format.bucketMs, share === 'group' ? GROUP_MODES : PRIVATE_MODES);
  const createdTmp = await ensureDir(spool.tmp, root, false, spool.modes);
  const createdGroups = await ensureDir(spool.groups, root, false, spool.modes);
  if (sync && (createdTmp || createdGroups)) await fsyncDir(root);
  return spool;
}

/**
 * Like ssh's StrictModes: a spool is a trust boundary, since whoever can write into it can
 * plant messages, remove them or redirect names. Refuse one owned by another user (root
 * excepted) or writable by others (or by its group, unless it is shared with the group).
 */
async function checkModes(root: string, share: Share): Promise<void> {
  const info = await stat(root);
  const uid = process.getuid?.();
  const fix = 'or open it with strictModes: false if that is intended';
  if (uid !== undefined && info.uid !== uid && info.uid !== 0) {
    throw new SpoolUnsafeError(`The spool at ${root} is owned by uid ${info.uid}, not by this user (uid ${uid}); chown it, ${fix}`);
  }
  if (info.mode & 0o002) {
    throw new SpoolUnsafeError(
      `The spool at ${root} is writable by every user (mode ${(info.mode & 0o7777).toString(8)}); chmod o-w it, ${fix}`,
    );
  }
  if (info.mode & 0o020 && share !== 'group') {
    throw new SpoolUnsafeError(
      `The spool at ${root} is writable by its group (mode ${(info.mode & 0o7777).toString(8)}) but was not created to be shared; chmod g-w it, ${fix}`,
    );
  }
}

export async function readFormat(root: string): Promise<SpoolFormat | null> {
  let text: string;
  try {
    text = await readFile(join(root, FORMAT_FILE), 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return null;
    throw error;
  }
  let parsed: Partial<SpoolFormat>;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SpoolFormatError(`${join(root, FORMAT_FILE)} is not valid JSON; this is not a spoolq spool, or its format file is damaged`);
  }
  if (parsed?.format !== FORMAT_NAME) {
    throw new SpoolFormatError(`${join(root, FORMAT_FILE)} does not describe a spoolq spool (format ${JSON.stringify(parsed?.format)})`);
  }
  if (parsed.version !== FORMAT_VERSION) {
    throw new SpoolFormatError(
      `The spool at ${root} has format version ${JSON.stringify(parsed.version)}; this spoolq reads version ${FORMAT_VERSION}. Use the spoolq release that wrote it`,
    );
  }
  if (parsed.share !== undefined && parsed.share !== 'private' && parsed.share !== 'group') {
    throw new SpoolFormatError(`${join(root, FORMAT_FILE)} has an invalid share ${JSON.stringify(parsed.share)}`);
  }
  if (!Number.isInteger(parsed.bucketMs) || (parsed.bucketMs as number) < 1) {
    throw new SpoolFormatError(`${join(root, FORMAT_FILE)} has an invalid bucketMs ${JSON.stringify(parsed.bucketMs)}`);
  }
  return parsed as SpoolFormat;
}

const FORMAT_TMP = /^spoolq\.json\.[0-9a-f]+\.tmp$/;

/** Writes the format file like a message: tmp, fdatasync, rename, fsync of the directory. */
async function createFormat(root: string, sync: boolean, share: Share, modes: Modes): Promise<SpoolFormat> {
  const entries = await readdir(root);
  if (entries.includes(FORMAT_FILE)) {
    // Another process created the spool since we looked: use its format file.
    const created = await readFormat(root);
    if (created) return created;
  }
  const strangers = entries.filter((n) => !FORMAT_TMP.test(n) && n !== FORMAT_FILE);
  if (strangers.length > 0) {
    throw new SpoolFormatError(
      `${root} is not empty and has no ${FORMAT_FILE}, so it is not a spoolq spool; pass an empty or missing directory`,
    );
  }
  const format: SpoolFormat = { format: FORMAT_NAME, version: FORMAT_VERSION, bucketMs: DEFAULT_BUCKET_MS, share };
  const tmp = join(root, `${FORMAT_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  await writeNewFile(tmp, Buffer.from(`${JSON.stringify(format)}\n`), sync, modes);
  await rename(tmp, join(root, FORMAT_FILE));
  if (sync) await fsyncDir(root);
  return (await readFormat(root)) ?? format;
}
