/**
 * fsck(): checks every file and name of a spool, and with `repair` fixes what can be fixed the
 * way the queue itself would, so it is safe while producers and consumers run:
 *
 *   problem          found where                                   repair
 *   corrupt          a message whose header, length, CRC, attributes   quarantine into the group's dead/
 *                    or JSON payload fail, or not a regular file
 *   too-large        a message over maxMessageBytes (if given)         quarantine into dead/ (unread)
 *   bad-name         a name that is not a bucket / ready / leased name quarantine into dead/
 *   expired-lease    a lease whose deadline passed (its consumer died) return it to ready/ (Leases.reap),
 *                                                                      or dead/ after maxAttempts
 *   stale-tmp        a file of a producer that died over an hour ago,  remove it
 *                    or an ack file of no lease written to over an
 *                    hour ago (ack-files.ts)
 *   orphan-reason    a dead/<name>.why without its dead letter          remove it
 *   missing          a directory of the layout is missing              create it
 *   stray            an unknown entry in a group                       quarantine into dead/
 *                    … at the spool's root, in groups/ or locks/       none: reported for a person
 *   bad-binding      a topics/ entry that is not a valid pattern       quarantine into dead/
 *   bad-lock         a lock directory without exactly one entry        none: reported
 *   unsafe           the spool is writable by others, or owned by      none: reported (chmod/chown it);
 *                    another user                                      --repair is refused as another user
 *
 * Every repair is one rename or unlink of one exact name, as in the queue's own protocol; a name
 * a consumer claimed meanwhile is simply gone (ENOENT), and counts as resolved. A message fanned
 * out to several groups (hard links of one file) is verified, and reported, in each.
 */
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ackFileName, ackFileToken, readAcks } from './ack-files.js';
import { entryName } from './bindings.js';
import { forEachLimit } from './concurrency.js';
import { type DeadCode, moveToDead } from './dead-letters.js';
import { DoorbellRinger } from './doorbell.js';
import { exists, makeDir, unlinkIfPresent } from './durable-fs.js';
import { isErrno, SpoolUnsafeError, storageError } from './errors.js';
import { checkSpoolExists } from './existing-spool.js';
import { type GroupPaths, openSpool, ROUTES_MARK, readFormat, type Spool } from './layout.js';
import { Leases, leftoverNames, leftoversOf } from './leases.js';
import { parseLockEntry } from './lock-state.js';
import { CorruptFileError } from './message-file.js';
import { allRecords, formatReady, parseBucket, parseLeased, parseReady, type ReadyName, unsettled } from './names.js';
import { checkInteger, DEFAULTS, GROUP_NAME, invalid, MAX_MESSAGE_BYTES_LIMIT } from './options.js';
import { type ReadRecord, readMessageFile, TooLargeFileError } from './read-message.js';
import { listBuckets } from './ready-index.js';
import { TMP_MAX_AGE_MS } from './recovery.js';
import { parsePattern } from './topics.js';

export type FsckProblemKind =
  | 'corrupt'
  | 'too-large'
  | 'bad-name'
  | 'expired-lease'
  | 'stale-tmp'
  | 'orphan-reason'
  | 'missing'
  | 'stray'
  | 'bad-binding'
  | 'bad-lock'
  | 'unsafe';

export interface FsckProblem {
  kind: FsckProblemKind;
  /** The path, relative to the spool. */
  path: string;
  /** The group it belongs to, or null. */
  group: string | null;
  /** What is wrong, in words. */
  reason: string;
  /** What repair does (or did) about it; null when a person has to decide. */
  repair: string | null;
  /** Whether it was repaired (or resolved itself meanwhile, e.g. a consumer claimed the file). */
  repaired: boolean;
}

export interface FsckReport {
  /** The spool (absolute). */
  spool: string;
  /** Whether this run repaired. */
  repair: boolean;
  groups: number;
  /** Message files (or envelopes) whose header, length, CRC and attributes were verified (per group). */
  checked: number;
  /** Messages seen, over every group (an envelope counts those it still holds): due, not yet due, leased; dead letters. */
  ready: number;
  delayed: number;
  leased: number;
  dead: number;
  problems: FsckProblem[];
  /** Problems that were not repaired: 0 means the spool is sound. */
  remaining: number;
}

export interface FsckOptions {
  /** Fix what can be fixed (see the table above). @default false: only report */
  repair?: boolean;
  /**
   * Report (and with repair, quarantine) messages over this many payload bytes, as consumers
   * with this `maxMessageBytes` would. @default no limit but the format's (2 GiB)
   */
  maxMessageBytes?: number;
  /** Expired leases of this attempt or later become dead letters when returned. @default 5 */
  maxAttempts?: number;
  /** Called as message files are verified: (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Called for each problem as it is found (and repaired). */
  onProblem?: (problem: FsckProblem) => void;
}

const FSCK_OPTIONS = ['repair', 'maxMessageBytes', 'maxAttempts', 'onProgress', 'onProblem'];
const ROOT_ENTRIES = new Set(['spoolq.json', 'tmp', 'groups', 'locks']);
const FORMAT_TMP = /^spoolq\.json\.[0-9a-f]+\.tmp$/;
const GROUP_DIRS = ['ready', 'leased', 'dead', 'doorbell'] as const;
const WHY = '.why';
/** Message files verified at once: enough to keep the disk and the libuv pool busy. */
const IO_CONCURRENCY = 16;

/** Checks (and with `repair`, repairs) the existing spool at `dir`. */
export async function fsck(dir: string, options: FsckOptions = {}): Promise<FsckReport> {
  if (typeof options !== 'object' || options === null) throw invalid('fsck options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!FSCK_OPTIONS.includes(key)) throw invalid(key, `one of the fsck options ${FSCK_OPTIONS.join(', ')}`, '…');
  }
  for (const fn of ['onProgress', 'onProblem'] as const) {
    if (options[fn] !== undefined && typeof options[fn] !== 'function') throw invalid(fn, 'a function', options[fn]);
  }
  const checker = new Checker(await checkSpoolExists(dir), {
    repair: options.repair === true,
    maxMessageBytes: checkInteger('maxMessageBytes', options.maxMessageBytes ?? MAX_MESSAGE_BYTES_LIMIT, 1, MAX_MESSAGE_BYTES_LIMIT),
    maxAttempts: checkInteger('maxAttempts', options.maxAttempts ?? DEFAULTS.maxAttempts, 1, 1000),
    onProgress: options.onProgress,
    onProblem: options.onProblem,
  });
  try {
    return await checker.run();
  } catch (error) {
    throw storageError(error, `check the spool at ${dir}`);
  }
}

interface Settings {
  repair: boolean;
  maxMessageBytes: number;
  maxAttempts: number;
  onProgress: FsckOptions['onProgress'];
  onProblem: FsckOptions['onProblem'];
}

type Verdict = { kind: 'corrupt' | 'too-large'; reason: string } | 'ok' | 'gone';

class Checker {
  readonly #root: string;
  readonly #settings: Settings;
  readonly #now = Date.now();
  readonly #report: FsckReport;
  #spool!: Spool;
  #total = 0;
  #done = 0;

  constructor(root: string, settings: Settings) {
    this.#root = root;
    this.#settings = settings;
    this.#report = {
      spool: root,
      repair: settings.repair,
      groups: 0,
      checked: 0,
      ready: 0,
      delayed: 0,
      leased: 0,
      dead: 0,
      problems: [],
      remaining: 0,
    };
  }

  async run(): Promise<FsckReport> {
    await this.#checkOwner();
    const missing: string[] = [];
    for (const name of ['tmp', 'groups']) if (!(await exists(join(this.#root, name)))) missing.push(name);
    // Validates the format file (ESPOOL_FORMAT); recreates tmp/ and groups/ as every open does.
    this.#spool = await openSpool(this.#root, true, { share: undefined, strictModes: false });
    for (const name of missing) {
      this.#problem({
        kind: 'missing',
        path: name,
        group: null,
        reason: `the directory ${name}/ was missing`,
        repair: 'recreated (opening a spool does it)',
        repaired: true,
      });
    }
    await this.#checkModes();
    const groups = await this.#checkRoot();
    if (this.#settings.onProgress) {
      for (const group of groups) this.#total += await this.#countMessages(this.#spool.group(group));
      this.#settings.onProgress(0, this.#total);
    }
    for (const group of groups) await this.#checkGroup(this.#spool.group(group));
    this.#report.groups = groups.length;
    this.#report.problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    this.#report.remaining = this.#report.problems.filter((p) => !p.repaired).length;
    return this.#report;
  }

  /**
   * A repair creates entries (buckets, reasons, doorbells) owned by whoever runs it: run as
   * another user (root, typically) on a private spool, it would leave entries the owner's
   * processes cannot open. So it is refused before anything is touched; a check only reports it.
   */
  async #checkOwner(): Promise<void> {
    const uid = process.getuid?.();
    let owner: number;
    try {
      owner = (await lstat(this.#root)).uid;
    } catch {
      return; // checkSpoolExists reported it already
    }
    if (uid === undefined || owner === uid) return;
    const shared = (await readFormat(this.#root))?.share === 'group';
    if (shared) return; // every member of the group may write, and its entries stay group-writable
    if (this.#settings.repair) {
      throw new SpoolUnsafeError(
        `The spool at ${this.#root} belongs to uid ${owner}, not to this user (uid ${uid}): a repair would leave entries only this user can use. Run it as the owner (sudo -u '#${owner}' spoolq fsck ${this.#root} --repair)`,
      );
    }
    this.#problem({
      kind: 'unsafe',
      path: '.',
      group: null,
      reason: `the spool belongs to uid ${owner}, not to this user (uid ${uid}); repair it as its owner`,
      repair: null,
      repaired: false,
    });
  }

  async #checkModes(): Promise<void> {
    const info = await lstat(this.#root);
    const shared = this.#spool.modes.file & 0o060;
    if (info.mode & 0o002 || (info.mode & 0o020 && !shared)) {
      this.#problem({
        kind: 'unsafe',
        path: '.',
        group: null,
        reason: `the spool directory is writable by ${info.mode & 0o002 ? 'every user' : 'its group'} (mode ${(info.mode & 0o7777).toString(8)}): whoever can write into it can plant or remove messages`,
        repair: null,
        repaired: false,
      });
    }
  }

  /** Checks the root, tmp/, locks/ and groups/; resolves to the names of the groups to check. */
  async #checkRoot(): Promise<string[]> {
    for (const entry of await readdir(this.#root, { withFileTypes: true })) {
      const path = join(this.#root, entry.name);
      if (FORMAT_TMP.test(entry.name)) {
        // Only an old one: a spool creation may be between writing it and renaming it now.
        const info = await lstat(path).catch(() => null);
        if (info && this.#now - info.mtimeMs > TMP_MAX_AGE_MS) {
          await this.#removable('stale-tmp', path, null, 'a format file left by a spool creation that did not finish');
        }
      } else if (!ROOT_ENTRIES.has(entry.name)) {
        this.#stray(path, null, 'not something spoolq writes at the root of a spool');
      } else if (entry.name !== 'spoolq.json' && !entry.isDirectory()) {
        this.#stray(path, null, `${entry.name} should be a directory`);
      }
    }
    await this.#checkTmp();
    await this.#checkLocks();
    const groups: string[] = [];
    for (const entry of await readdir(this.#spool.groups, { withFileTypes: true }).catch(notADirectory)) {
      const path = join(this.#spool.groups, entry.name);
      if (entry.name.startsWith(ROUTES_MARK) && entry.isFile()) continue; // renamed when routes change
      if (!GROUP_NAME.test(entry.name)) this.#stray(path, null, 'not a valid group name: spoolq ignores it');
      else if (!entry.isDirectory()) this.#stray(path, null, 'a group name on something that is not a directory: spoolq ignores it');
      else groups.push(entry.name);
    }
    return groups.sort();
  }

  async #checkTmp(): Promise<void> {
    for (const name of await readdir(this.#spool.tmp).catch(notADirectory)) {
      const path = join(this.#spool.tmp, name);
      let info: Awaited<ReturnType<typeof lstat>>;
      try {
        info = await lstat(path);
      } catch (error) {
        if (isErrno(error, 'ENOENT')) continue; // published or cleaned meanwhile
        throw error;
      }
      if (this.#now - info.mtimeMs > TMP_MAX_AGE_MS) {
        const hours = ((this.#now - info.mtimeMs) / 3_600_000).toFixed(1);
        await this.#removable('stale-tmp', path, null, `left by a producer or lock that died ${hours} h ago`);
      }
    }
  }

  async #checkLocks(): Promise<void> {
    const locks = join(this.#root, 'locks');
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(locks, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return; // no lock was ever taken (ENOTDIR: reported as stray)
      throw error;
    }
    for (const entry of entries) {
      const path = join(locks, entry.name);
      if (!GROUP_NAME.test(entry.name) || !entry.isDirectory()) {
        this.#stray(path, null, 'not a lock directory');
        continue;
      }
      let names: string[];
      try {
        names = await readdir(path);
      } catch (error) {
        if (isErrno(error, 'ENOENT')) continue;
        throw error;
      }
      const valid = names.filter((n) => parseLockEntry(n) !== null);
      if (valid.length !== 1) {
        this.#problem({
          kind: 'bad-lock',
          path: this.#rel(path),
          group: null,
          reason:
            valid.length === 0
              ? `the lock has no entry (${names.length === 0 ? 'empty' : `only ${names.map((n) => JSON.stringify(n)).join(', ')}`}): taking it fails`
              : `the lock has ${valid.length} entries (changed by hand): the highest token counts`,
          repair: null,
          repaired: false,
        });
      }
      for (const name of names.filter((n) => parseLockEntry(n) === null)) {
        this.#stray(join(path, name), null, 'not a lock entry');
      }
    }
  }

  async #countMessages(group: GroupPaths): Promise<number> {
    let count = 0;
    for (const bucket of await this.#buckets(group)) {
      count += (await readdir(join(group.ready, bucket)).catch(() => [] as string[])).length;
    }
    count += (await readdir(group.leased).catch(() => [] as string[])).length;
    return count;
  }

  /** Valid bucket directories of a group (without reporting: the check does). */
  #buckets(group: GroupPaths): Promise<string[]> {
    return listBuckets(group.ready, null).catch(() => []);
  }

  async #checkGroup(group: GroupPaths): Promise<void> {
    if (!(await this.#checkGroupDirs(group))) return;
    await this.#checkReady(group);
    const leasedNames = await this.#checkLeased(group);
    await this.#checkAckFiles(group, leasedNames);
    await this.#checkDead(group);
    await this.#checkTopics(group);
  }

  /** The group's own directories; false when the rest cannot be checked (deleted meanwhile, no dead/). */
  async #checkGroupDirs(group: GroupPaths): Promise<boolean> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(group.root, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return false;
      throw error;
    }
    const known = new Set<string>([...GROUP_DIRS, 'topics']);
    // dead/ first: the others are quarantined into it.
    for (const name of ['dead', ...GROUP_DIRS.filter((d) => d !== 'dead')]) {
      const entry = entries.find((e) => e.name === name);
      const path = join(group.root, name);
      if (entry?.isDirectory()) continue;
      if (entry && name === 'dead') {
        this.#stray(path, group, 'dead should be a directory: nothing can be quarantined; move it away by hand');
        return false;
      }
      if (entry) {
        await this.#quarantine('stray', path, group, null, 'bad-name', `${name} should be a directory`);
        if (!this.#settings.repair) continue;
      }
      const problem = this.#problem({
        kind: 'missing',
        path: this.#rel(path),
        group: group.name,
        reason: `the directory ${name}/ of the group is missing${name === 'doorbell' ? ': spoolq does not see the group' : ''}`,
        repair: 'create it',
        repaired: false,
      });
      if (this.#settings.repair) {
        await makeDir(path, this.#spool.modes);
        problem.repaired = true;
      }
    }
    for (const entry of entries) {
      if (known.has(entry.name) || ackFileToken(entry.name) !== null) continue; // ack files: #checkAckFiles
      await this.#quarantine('stray', join(group.root, entry.name), group, null, 'bad-name', 'not part of a group');
    }
    if (entries.find((e) => e.name === 'topics' && !e.isDirectory())) {
      await this.#quarantine('stray', group.topics, group, null, 'bad-name', 'topics should be a directory');
    }
    return true;
  }

  async #checkReady(group: GroupPaths): Promise<void> {
    const entries = await readdir(group.ready, { withFileTypes: true }).catch((error) => {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return [];
      throw error;
    });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.')) continue; // spoolq ignores hidden names
      const path = join(group.ready, entry.name);
      if (!parseBucket(entry.name)) {
        await this.#quarantine('bad-name', path, group, null, 'bad-name', `not a spoolq bucket name: ${JSON.stringify(entry.name)}`);
        continue;
      }
      if (!entry.isDirectory()) {
        await this.#quarantine('bad-name', path, group, null, 'bad-name', 'a bucket name on something that is not a directory');
        continue;
      }
      let names: string[];
      try {
        names = (await readdir(path)).sort();
      } catch (error) {
        if (isErrno(error, 'ENOENT')) continue; // drained and removed meanwhile
        throw error;
      }
      await forEachLimit(names, IO_CONCURRENCY, async (name) => {
        if (name.startsWith('.')) return;
        const file = join(path, name);
        const ready = parseReady(name);
        if (!ready) {
          await this.#quarantine('bad-name', file, group, null, 'bad-name', `not a spoolq message name: ${JSON.stringify(name)}`);
          return;
        }
        const verdict = await this.#verify(file, ready);
        if (verdict === 'gone') return;
        if (verdict !== 'ok') {
          await this.#quarantine(verdict.kind, file, group, name, verdict.kind, verdict.reason);
          return;
        }
        if (ready.visibleAt > this.#now) this.#report.delayed += unsettled(ready);
        else this.#report.ready += unsettled(ready);
      });
    }
  }

  /** Checks leased/; resolves to the names it listed (before any reap), for #checkAckFiles. */
  async #checkLeased(group: GroupPaths): Promise<string[]> {
    const names = await readdir(group.leased).catch(missingAsEmpty);
    const expired: FsckProblem[] = [];
    const leftovers = leftoverNames(names); // removed by the reap below; their records are counted in another name
    for (const name of names.sort()) {
      if (name.startsWith('.') || leftovers.has(name)) continue;
      const file = join(group.leased, name);
      const leased = parseLeased(name);
      const ready = leased && parseReady(leased.ready);
      if (!leased || !ready) {
        await this.#quarantine('bad-name', file, group, null, 'bad-name', `not a leased message name: ${JSON.stringify(name)}`);
        continue;
      }
      // What is settled: the bits of its name, and of an envelope the acks in its ack file.
      const current = ready.count > 1 ? { ...ready, settled: ready.settled | readAcks(group.root, leased.token, ready.count) } : ready;
      const verdict = await this.#verify(file, current);
      if (verdict === 'gone') continue; // acked, extended or reaped meanwhile
      const isExpired = leased.deadline <= this.#now;
      if (verdict !== 'ok') {
        if (isExpired) {
          const deadName = current === ready ? leased.ready : formatReady(current);
          await this.#quarantine(verdict.kind, file, group, deadName, verdict.kind, verdict.reason);
          if (this.#settings.repair) {
            // Its leftover links hold some of its records, now in dead/ with it: they go too, and its ack file.
            for (const leftover of leftoversOf(names, name)) unlinkIfPresent(join(group.leased, leftover));
            unlinkIfPresent(join(group.root, ackFileName(leased.token)));
          }
        } else {
          this.#problem({
            kind: verdict.kind,
            path: this.#rel(file),
            group: group.name,
            reason: `${verdict.reason} (leased by a consumer until ${new Date(leased.deadline).toISOString()})`,
            repair: null,
            repaired: false,
          });
        }
        continue;
      }
      this.#report.leased += unsettled(current);
      if (isExpired) {
        const last = ready.attempt >= this.#settings.maxAttempts;
        expired.push(
          this.#problem({
            kind: 'expired-lease',
            path: this.#rel(file),
            group: group.name,
            reason: `the lease of attempt ${ready.attempt} expired ${Math.round((this.#now - leased.deadline) / 1000)} s ago (its consumer died or stalled)`,
            repair: last ? `move it to dead/ (attempt ${ready.attempt} of ${this.#settings.maxAttempts})` : 'return it to ready/',
            repaired: false,
          }),
        );
      }
    }
    if (!this.#settings.repair || expired.length === 0) return names;
    const leases = new Leases(group, {
      leaseMs: DEFAULTS.leaseMs,
      maxAttempts: this.#settings.maxAttempts,
      maxMessageBytes: this.#settings.maxMessageBytes,
      bucketMs: this.#spool.bucketMs,
      sync: true,
      modes: this.#spool.modes,
      tmp: this.#spool.tmp,
    });
    await leases.reap(this.#now);
    for (const problem of expired) problem.repaired = !(await exists(join(this.#root, problem.path)));
    await new DoorbellRinger(this.#spool.modes).ring(group.doorbell); // wake waiting consumers
    return names;
  }

  /**
   * The ack files (ack-files.ts) whose lease has no name left in leased/, and that were last
   * written over an hour ago: left by a consumer that died (between the end of a lease and the
   * removal of its file, or holding spares), or by an ack that raced a reaper's takeover. A file
   * whose token is in `leasedNames` (#checkLeased's listing) is a live lease's; one made after that
   * listing, by a claim, is fresh. A listing of a large directory can miss a name renamed during it
   * (an extend), so leased/ is listed again before a removal.
   */
  async #checkAckFiles(group: GroupPaths, leasedNames: readonly string[]): Promise<void> {
    const files = (await readdir(group.root).catch(missingAsEmpty)).filter((n) => ackFileToken(n) !== null);
    if (files.length === 0) return;
    const tokens = new Set<string>();
    const addTokens = (names: readonly string[]) => {
      for (const name of names) {
        const leased = parseLeased(name);
        if (leased) tokens.add(leased.token);
      }
    };
    addTokens(leasedNames);
    const stale: Array<{ path: string; name: string; hours: string }> = [];
    for (const name of files) {
      if (tokens.has(ackFileToken(name) as string)) continue;
      const path = join(group.root, name);
      let info: Awaited<ReturnType<typeof lstat>>;
      try {
        info = await lstat(path);
      } catch (error) {
        if (isErrno(error, 'ENOENT')) continue; // removed meanwhile
        throw error;
      }
      if (this.#now - info.mtimeMs <= TMP_MAX_AGE_MS) continue;
      stale.push({ path, name, hours: ((this.#now - info.mtimeMs) / 3_600_000).toFixed(1) });
    }
    if (stale.length === 0) return;
    addTokens(await readdir(group.leased).catch(missingAsEmpty));
    for (const { path, name, hours } of stale) {
      if (tokens.has(ackFileToken(name) as string)) continue;
      await this.#removable('stale-tmp', path, group, `an ack file of no lease, last written ${hours} h ago`);
    }
  }

  async #checkDead(group: GroupPaths): Promise<void> {
    const names = await readdir(group.dead).catch(missingAsEmpty);
    const letters = new Set(names.filter((n) => !n.endsWith(WHY) && !n.startsWith('.')));
    this.#report.dead += letters.size;
    for (const name of names) {
      const letter = name.slice(0, -WHY.length);
      if (!name.endsWith(WHY) || letters.has(letter)) continue;
      // A listing of a large dead/ is not a snapshot: a letter renamed in during it can be
      // missed while its new reason is seen. Look again before calling the reason an orphan.
      if (await exists(join(group.dead, letter))) continue;
      await this.#removable('orphan-reason', join(group.dead, name), group, 'the reason of a dead letter that is gone');
    }
  }

  async #checkTopics(group: GroupPaths): Promise<void> {
    let names: string[];
    try {
      names = await readdir(group.topics);
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return; // made before bindings existed: receives every message
      throw error;
    }
    let moved = false;
    for (const name of names) {
      const path = join(group.topics, name);
      const why = await bindingProblem(path, name);
      if (why) {
        await this.#quarantine('bad-binding', path, group, null, 'bad-name', `${why}: routing ignores it`);
        moved ||= this.#settings.repair;
      }
    }
    // Some of these (a name that decodes to a pattern, though not as spoolq writes it) did route:
    // say the routes changed, as bind and unbind do.
    if (moved) await this.#spool.routesChanged();
  }

  /** Verifies a message file; 'gone' when it vanished (claimed, acked). */
  async #verify(file: string, name: ReadyName): Promise<Verdict> {
    this.#done++;
    this.#settings.onProgress?.(this.#done, Math.max(this.#total, this.#done));
    try {
      const { records } = await this.#read(file, name);
      this.#report.checked++;
      // The name carries the id of its first message: record 0, or for a part of an envelope
      // (publisher.ts #names) its first record, whose bits before it are set.
      const ids = records.map((r) => r?.attributes.id);
      const at = ids.indexOf(name.id);
      // Not found is bad unless that record was not read (damage in another part: see #read).
      const unread = records.includes(null);
      if (at === -1 ? !unread : (name.settled & allRecords(at)) !== allRecords(at)) {
        return { kind: 'corrupt', reason: `the ids in the file (${JSON.stringify(ids[0])}…) do not match the id in its name (${name.id})` };
      }
      if (records.some((r) => r !== null && typeof r.attributes.enqueuedAt !== 'number')) {
        return { kind: 'corrupt', reason: 'the attributes have no enqueuedAt time' };
      }
      return 'ok';
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return 'gone';
      if (!(error instanceof CorruptFileError)) throw error;
      this.#report.checked++;
      return { kind: error instanceof TooLargeFileError ? 'too-large' : 'corrupt', reason: error.message };
    }
  }

  /**
   * The records of a message file or envelope, all of them. A part of an envelope (its name has
   * the other parts' records settled) is bad only if a record it holds is: damage elsewhere in
   * the file is the concern of the part that holds it, and a consumer delivers the others.
   */
  async #read(file: string, name: ReadyName): Promise<{ records: Array<ReadRecord | null> }> {
    try {
      return await readMessageFile(file, this.#settings.maxMessageBytes, name.count);
    } catch (error) {
      if (!(error instanceof CorruptFileError) || name.count === 1 || name.settled === 0n) throw error;
      return readMessageFile(file, this.#settings.maxMessageBytes, name.count, name.settled);
    }
  }

  /** Reports a bad entry of a group; with repair, moves it to the group's dead/ with a reason. */
  async #quarantine(
    kind: FsckProblemKind,
    path: string,
    group: GroupPaths,
    deadName: string | null,
    code: DeadCode,
    reason: string,
  ): Promise<void> {
    const problem = this.#problem({
      kind,
      path: this.#rel(path),
      group: group.name,
      reason,
      repair: `quarantine into ${this.#rel(group.dead)}/`,
      repaired: false,
    });
    if (!this.#settings.repair) return;
    // false: a consumer claimed or quarantined it first; either way it is no longer there.
    await moveToDead(
      path,
      group.dead,
      deadName,
      { code, reason, ...(deadName ? {} : { originalName: relative(group.root, path) }) },
      this.#spool.modes,
    );
    problem.repaired = true;
  }

  /** Reports a file to remove; with repair, removes it. */
  async #removable(kind: FsckProblemKind, path: string, group: GroupPaths | null, reason: string): Promise<void> {
    const problem = this.#problem({
      kind,
      path: this.#rel(path),
      group: group?.name ?? null,
      reason,
      repair: 'remove it',
      repaired: false,
    });
    if (!this.#settings.repair) return;
    await rm(path, { recursive: true, force: true });
    problem.repaired = true;
  }

  #stray(path: string, group: GroupPaths | null, reason: string): void {
    this.#problem({ kind: 'stray', path: this.#rel(path), group: group?.name ?? null, reason, repair: null, repaired: false });
  }

  /** Records a problem; the returned object is the report's, so a later repair updates it. */
  #problem(problem: FsckProblem): FsckProblem {
    this.#report.problems.push(problem);
    this.#settings.onProblem?.(problem);
    return problem;
  }

  #rel(path: string): string {
    return relative(this.#root, path) || '.';
  }
}

/** For a listing of what should be a directory and was reported as a stray: nothing in it. */
function notADirectory(error: unknown): never[] {
  if (isErrno(error, 'ENOTDIR')) return [];
  throw error;
}

/** For a listing of a group's directory: nothing in it when it is gone (the group deleted meanwhile) or not a directory. */
function missingAsEmpty(error: unknown): never[] {
  if (isErrno(error, 'ENOENT', 'ENOTDIR')) return [];
  throw error;
}

/** Why a topics/ entry is not a binding, or null when it is one. */
async function bindingProblem(path: string, name: string): Promise<string | null> {
  let pattern: string;
  if (name.startsWith('=')) {
    try {
      pattern = decodeURIComponent(name.slice(1));
    } catch {
      return 'not a binding entry (bad encoding)';
    }
    if (entryName(pattern) !== name) return 'not a binding entry (not the encoding of a pattern)';
  } else if (name.startsWith('sha256-')) {
    try {
      pattern = await readFile(path, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return null; // unbound meanwhile
      return `not readable (${(error as NodeJS.ErrnoException).code})`;
    }
    if (entryName(pattern) !== name) return 'a hashed binding whose content is not the pattern its name hashes';
  } else {
    return 'not a binding entry';
  }
  try {
    parsePattern(pattern);
  } catch (error) {
    return `an invalid pattern (${(error as Error).message})`;
  }
  return null;
}
