/**
 * What every `spoolq` command shares: argument parsing (node's util.parseArgs), the CLI's own
 * errors and exit codes, output with backpressure and a closed pipe, signals, durations, the
 * JSON shape of a message, opening a spool without creating it, and a TTY progress bar.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { GroupNotFoundError, MessageTooLargeError, SpoolqError } from '../errors.js';
import { checkSpoolExists } from '../existing-spool.js';
import type { Message } from '../message.js';
import { checkGroupName, MAX_TIMER_MS } from '../options.js';
import { openQueue, type Queue } from '../queue.js';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
/** What parse() returns for the options `O`. */
export type Parsed<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/** Exit codes of every command (documented in `spoolq --help`). */
export const EXIT = Object.freeze({
  OK: 0,
  /** Something failed: the message on stderr says what. */
  ERROR: 1,
  /** Bad usage: unknown option, missing or bad argument. Nothing was done. */
  USAGE: 2,
  /** Nothing to do in time: pop found no message, lock timed out. */
  NOTHING: 3,
  /** fsck: problems remain (run with --repair, or see the report). */
  PROBLEMS: 4,
  /** consume: some command failed (its message was nacked); as xargs(1), so never one of ours. */
  COMMAND_FAILED: 123,
  /** A command to run was found but cannot be executed. */
  CANNOT_EXEC: 126,
  /** A command to run was not found. */
  NOT_FOUND: 127,
  /** stdout was closed by its reader (as a process killed by SIGPIPE). */
  PIPE: 141,
});

/** Bad usage of the command line: exit code 2, `spoolq: EUSAGE: …`. */
export class UsageError extends SpoolqError {
  override name = 'UsageError';
  override readonly code = 'EUSAGE';
}

/** A named thing (a dead letter id, a group) that the command was asked about does not exist. */
export class NotFoundError extends SpoolqError {
  override name = 'NotFoundError';
  override readonly code = 'ENOT_FOUND';
}

/** A command given to run (consume --exec, lock -- CMD) cannot be started. */
export class ExecError extends SpoolqError {
  override name = 'ExecError';
  override readonly code = 'EEXEC';
  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The reader of stdout went away (`spoolq peek S | head -1`): exit quietly with 141. */
export class PipeClosedError extends Error {
  override name = 'PipeClosedError';
}

/** The exit code for an error that ended a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof PipeClosedError) return EXIT.PIPE;
  if (error instanceof ExecError) return error.exitCode;
  const code = (error as { code?: unknown })?.code;
  if (code === 'EUSAGE' || code === 'EINVALID_OPTION' || code === 'EINVALID_NAME') return EXIT.USAGE;
  if (code === 'ELOCK_TIMEOUT') return EXIT.NOTHING;
  return EXIT.ERROR;
}

/** `spoolq: CODE: what happened and what to do` for stderr; null for a closed pipe (say nothing). */
export function formatError(error: unknown, command: string | null): string | null {
  if (error instanceof PipeClosedError) return null;
  if (error instanceof SpoolqError) {
    const hint = error instanceof UsageError ? `\nRun 'spoolq ${command ?? ''}${command ? ' ' : ''}--help' for usage.` : '';
    return `spoolq: ${error.code}: ${error.message}${hint}`;
  }
  const errno = error as NodeJS.ErrnoException;
  if (errno instanceof Error && typeof errno.code === 'string' && errno.syscall !== undefined) {
    return `spoolq: ${errno.code}: ${errno.message}`;
  }
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `spoolq: EUNEXPECTED: ${text}\nThis is a bug in spoolq; please report it with the lines above.`;
}

/** One command of the CLI. `run` resolves to the exit code. */
export interface Command {
  /** The whole `--help` text: synopsis, description, options, examples. */
  readonly help: string;
  run(argv: string[]): Promise<number>;
}

/** Whether argv asks for help (`-h`/`--help` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/** util.parseArgs, strict, with positionals; its errors become usage errors. */
export function parse<const O extends OptionsConfig>(argv: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const unknown = /^Unknown option '([^']*)'/.exec(message);
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) throw new UsageError(`unknown option ${unknown[1]}`);
    throw new UsageError(message.replace(/\s+/g, ' ').trim());
  }
}

/**
 * parseArgs has no options with an optional value: rewrites a bare `--NAME` or `-S` (its short
 * form; before any `--`) to `--NAME=VALUE`. `--NAME 100` would then make 100 a positional:
 * refused with the fix.
 */
export function optionalValue(argv: readonly string[], name: string, short: string, value: string): string[] {
  const result = [...argv];
  for (let i = 0; i < result.length; i++) {
    if (result[i] === '--') break;
    const given = result[i];
    if (given !== `--${name}` && given !== `-${short}`) continue;
    const next = result[i + 1];
    if (next !== undefined && DURATION.test(next)) {
      throw new UsageError(`write --${name}=${next}, with '=': a bare ${given} means ${value}`);
    }
    result[i] = `--${name}=${value}`;
  }
  return result;
}

/** Positionals within [min, max] (max: Infinity for a rest argument), or a usage error. */
export function expectPositionals(positionals: string[], min: number, max: number, synopsis: string): void {
  if (positionals.length < min) throw new UsageError(`missing argument: ${synopsis}`);
  if (positionals.length > max) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}: ${synopsis}`);
  }
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** A duration: `250` or `250ms`, `1.5s`, `2m`, `1h` → ms; `inf`/`forever` → Infinity if allowed. */
export function parseDuration(option: string, text: string, { infinite = false } = {}): number {
  if (infinite && /^(inf|infinity|forever)$/i.test(text)) return Number.POSITIVE_INFINITY;
  const m = DURATION.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] as number)) : Number.NaN;
  if (!Number.isFinite(ms) || ms > MAX_TIMER_MS) {
    throw new UsageError(
      `--${option} takes a duration such as 500, 500ms, 2s, 1.5m or 1h${infinite ? ' (or inf)' : ''}, up to about 24 days; got ${JSON.stringify(text)}`,
    );
  }
  return ms;
}

/** An integer option in [min, max], or a usage error. */
export function parseInteger(option: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw new UsageError(`--${option} takes an integer ${range}; got ${JSON.stringify(text)}`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Output

let stdoutClosed = false;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') stdoutClosed = true;
});

/** Writes to stdout and waits until it is handed to the OS; PipeClosedError if the reader left. */
export function out(data: string | Uint8Array): Promise<void> {
  if (stdoutClosed) return Promise.reject(new PipeClosedError('stdout is closed'));
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (error) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === 'EPIPE') {
        stdoutClosed = true;
        reject(new PipeClosedError('stdout is closed'));
      } else {
        reject(error);
      }
    });
  });
}

/** A line on stderr (notes and warnings, never data). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[\d.]+[a-z]*$|^-$/.test(r[i] ?? '')));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const last = i === cells.length - 1;
        if (numeric[i]) return c.padStart(widths[i] as number);
        return last ? c : c.padEnd(widths[i] as number);
      })
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** A short human duration: 850ms, 12.3s, 4m05s, 2h10m, 3d04h. */
export function humanAge(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const s = Math.floor(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3_600)).padStart(2, '0')}h`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as text if it is valid UTF-8, else null. */
export function bodyText(body: Uint8Array): string | null {
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

/** What pop --json, tail and peek --json print for a message (one JSON line). */
export interface MessageJson {
  id: string;
  group: string;
  attempts: number;
  priority: number;
  enqueuedAt: number;
  topic: string | null;
  headers: Record<string, string>;
  /** 'json' when it was pushed as JSON (push --json, or the library's json codec). */
  codec: 'raw' | 'json';
  /** json codec: the value. */
  data?: unknown;
  /** raw codec: the body as UTF-8 text… */
  body?: string;
  /** …or, when it is not valid UTF-8, base64. */
  bodyBase64?: string;
  /** peek only: when it is (or was) due, ms since the epoch. */
  visibleAt?: number;
}

export interface MessageLike {
  id: string;
  attempts: number;
  priority: number;
  enqueuedAt: number;
  topic: string | undefined;
  headers: Readonly<Record<string, string>>;
  body: Buffer;
  /** Decoded by the codec the message was written with: a Buffer for raw. */
  data: unknown;
}

export function messageJson(m: MessageLike, group: string): MessageJson {
  const json: MessageJson = {
    id: m.id,
    group,
    attempts: m.attempts,
    priority: m.priority,
    enqueuedAt: m.enqueuedAt,
    topic: m.topic ?? null,
    headers: { ...m.headers },
    codec: Buffer.isBuffer(m.data) ? 'raw' : 'json',
  };
  if (json.codec === 'json') {
    json.data = m.data;
  } else {
    const text = bodyText(m.body);
    if (text === null) json.bodyBase64 = m.body.toString('base64');
    else json.body = text;
  }
  return json;
}

/** How a message's body is written for a shell: a line of text, or the exact bytes. */
export type BodyMode = 'text' | 'raw';

/** text: the body and a newline (a message is a line); raw: the body's bytes, nothing added. */
export function framedBody(m: Message<unknown>, mode: BodyMode): Buffer {
  return mode === 'raw' ? m.body : Buffer.concat([m.body, NEWLINE]);
}
const NEWLINE = Buffer.from('\n');

/** Settles a message; a failure (the lease was lost meanwhile…) is a warning, not the end. */
export async function settle(message: Message<unknown>, how: 'ack' | { reason: string; delayMs?: number }): Promise<boolean> {
  try {
    if (how === 'ack') await message.ack();
    else await message.nack(how);
    return true;
  } catch (error) {
    note(`${formatError(error, null)} (message ${message.id})`);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Spools and groups

/** A queue handle of the raw codec: the CLI deals in bytes. */
export type RawQueue = Queue<Buffer, string | Uint8Array>;

/** A handle on an existing spool that consumes from no group (raw codec: bytes in and out). */
export async function openExisting(dir: string): Promise<RawQueue> {
  return openQueue(await checkSpoolExists(dir), { group: null, codec: 'raw' });
}

/** Throws EGROUP_NOT_FOUND naming the groups that do exist. */
export async function requireGroup(q: Queue<any, any>, group: string): Promise<void> {
  checkGroupName(group); // EINVALID_NAME (exit 2), as pop and peek say for a bad name
  const names = (await q.groups()).map((g) => g.name);
  if (names.includes(group)) return;
  const known = names.length > 0 ? `its groups are: ${names.join(', ')}` : 'it has no group yet';
  throw new GroupNotFoundError(`There is no group ${group} in the spool at ${q.dir} (${known}); pass --group NAME`);
}

/**
 * A consuming command creates its group only when the spool has no group yet or with --create:
 * a new group receives a copy of every message pushed from then on, so a mistyped --group would
 * fill the disk unnoticed.
 */
export async function checkNewGroup(dir: string, group: string, create: boolean): Promise<void> {
  checkGroupName(group); // EINVALID_NAME before anything else
  let names: string[];
  try {
    const q = await openExisting(dir);
    names = (await q.groups()).map((g) => g.name);
    await q.close();
  } catch {
    return; // no spool yet (it is created with the group), or unreadable: openQueue will say
  }
  if (names.length === 0 || names.includes(group)) return;
  if (!create) {
    throw new GroupNotFoundError(
      `There is no group ${group} in the spool at ${dir} (its groups are: ${names.join(', ')}); pass --create to create it (it then receives every message pushed from now on)`,
    );
  }
  note(
    `spoolq: note: created group ${group}; it receives every message pushed from now on (delete it with 'spoolq groups ${dir} delete ${group}')`,
  );
}

/**
 * Opens `group` to take messages from (created per checkNewGroup's rule) with a stop controller
 * installed first: a signal while opening must not kill the process.
 */
export async function openToConsume(spool: string, group: string, create: boolean): Promise<{ q: RawQueue; stop: StopController }> {
  const stop = stopController();
  try {
    await checkNewGroup(spool, group, create);
    return { q: await openQueue(spool, { group, codec: 'raw' }), stop };
  } catch (error) {
    stop.dispose();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Signals

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const STOP_SIGNALS: StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The shell's exit status for a process ended by `signal`: 128 + its number. */
export function signalStatus(signal: NodeJS.Signals | string): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 1);
}

/**
 * Calls `handler(signal, count)` on SIGINT, SIGTERM and SIGHUP instead of dying, count being 1 for
 * the first stop signal, 2 for the second… Returns a function that removes the handlers.
 */
export function onStopSignals(handler: (signal: StopSignal, count: number) => void): () => void {
  let count = 0;
  const listeners = STOP_SIGNALS.map((signal) => {
    const listener = () => handler(signal, ++count);
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
}

/** An AbortSignal aborted by the first stop signal; `stopped` says which one. */
export interface StopController {
  signal: AbortSignal;
  stopped: () => StopSignal | null;
  dispose: () => void;
}

export function stopController(): StopController {
  const controller = new AbortController();
  let stoppedBy: StopSignal | null = null;
  const dispose = onStopSignals((signal) => {
    stoppedBy ??= signal;
    controller.abort(new Error(`stopped by ${signal}`));
  });
  return { signal: controller.signal, stopped: () => stoppedBy, dispose };
}

// ---------------------------------------------------------------------------------------------
// Progress

export interface Progress {
  /** Sets the count done (of `total`, which may grow). */
  update(done: number, total?: number): void;
  /** Erases the bar. */
  done(): void;
}

const NO_PROGRESS: Progress = { update() {}, done() {} };

/**
 * A one-line progress bar on stderr, only when stderr is a terminal (never in a pipe or a log),
 * redrawn at most 10 times a second, for operations that may take a while.
 */
export function progress(label: string, total = 0): Progress {
  const stream = process.stderr;
  if (!stream.isTTY) return NO_PROGRESS;
  let last = 0;
  let shown = false;
  let count = 0;
  let of = total;
  const draw = () => {
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - 30));
    const ratio = of > 0 ? Math.min(1, count / of) : 0;
    const filled = Math.round(ratio * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    stream.write(`\r\x1b[K${label} ${bar} ${Math.floor(ratio * 100)}% ${count}/${of}`);
    shown = true;
  };
  return {
    update(done, newTotal) {
      count = done;
      if (newTotal !== undefined) of = newTotal;
      const now = Date.now();
      if (now - last >= 100 || count === of) {
        last = now;
        draw();
      }
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}

/**
 * Reads all of stdin as one message body: at most `maxMessageBytes`, plus the newline that
 * text mode removes. Stops reading at once past that: refusing 1 GB must not hold 1 GB first.
 */
export async function readStdin(maxMessageBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxMessageBytes + 1) {
      process.stdin.destroy();
      throw new MessageTooLargeError(
        `stdin holds over ${maxMessageBytes} bytes, more than one message may (maxMessageBytes); split it, e.g. one message per line with --lines`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
