/** spoolq consume SPOOL --exec CMD: runs CMD for each message; exit 0 acks, anything else nacks. */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import type { Message } from '../message.js';
import { openQueue } from '../queue.js';
import {
  type BodyMode,
  type Command,
  checkNewGroup,
  EXIT,
  ExecError,
  expectPositionals,
  framedBody,
  note,
  onStopSignals,
  parse,
  parseDuration,
  parseInteger,
  type RawQueue,
  settle,
  UsageError,
} from './common.js';
import { work } from './work.js';

const SYNOPSIS = "spoolq consume SPOOL --exec 'CMD' [--concurrency N] [--group G] [--max N] [--idle D]";

const help = `
Usage: ${SYNOPSIS}

Runs CMD with /bin/sh -c once per message of the group, the body on its stdin, until stopped.
Exit status 0 acks the message (removes it); any other status nacks it: it comes back later
with attempts + 1 (backoff: --backoff × 2^(attempts−1), at most 1 min), and after
--max-attempts deliveries it becomes a dead letter ('spoolq dead SPOOL list').

CMD's environment has, besides spoolq's own:
  SPOOLQ_ID           the message id
  SPOOLQ_ATTEMPTS     1 on the first delivery, more on a redelivery
  SPOOLQ_TOPIC        the topic it was pushed with ('' if none)
  SPOOLQ_PRIORITY     0 to 9
  SPOOLQ_ENQUEUED_AT  when it was pushed, ms since the epoch
  SPOOLQ_HEADERS      its headers as a JSON object
  SPOOLQ_GROUP, SPOOLQ_SPOOL   where it came from
CMD's stdout and stderr are spoolq's. With --concurrency N, N commands run at once.

Stopping: SIGINT (Ctrl-C), SIGTERM or SIGHUP stop taking messages and wait for the running
commands, which run in their own session so that Ctrl-C does not reach them; a second signal
sends them SIGTERM (their messages are nacked). If spoolq is killed outright, a running
command's message comes back after the lease (--lease) expires.

Options:
  -e, --exec CMD          the shell command to run for each message (required)
  -c, --concurrency N     commands running at once (default 1)
  -g, --group G           the group to consume (default: default)
      --create            create the group if missing (in a spool without groups it always is)
  -n, --max N             stop after N messages
      --idle D            stop when no message arrived for D and no command runs (500, 2s, 1m)
      --raw               the body's bytes exactly on stdin; by default (text) a newline is added
                          after the body, as pop prints it
      --max-attempts N    deliveries before a message becomes a dead letter (default 5)
      --backoff D         delay before the first retry of a nacked message (default 1s)
      --lease D           how long a message stays claimed without news from spoolq, which
                          renews it every third of it while CMD runs (default 30s)
  -h, --help              this help

Exit: 0 when every command exited 0; 123 when some command failed (its message was nacked), as
with xargs; 126/127 when CMD cannot be run (consume stops at once: a typo must not turn every
message into a dead letter); 1 error.

Examples:
  spoolq consume /tmp/q --exec 'cat >> out.txt'
  spoolq consume /tmp/q --exec './handle.sh "$SPOOLQ_ID"' --concurrency 4
  spoolq consume /tmp/q --exec 'jq .to' --max 1        # exit status: that of jq
  spoolq consume /tmp/q --exec 'convert - out/$SPOOLQ_ID.png' --raw --idle 5s
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      exec: { type: 'string', short: 'e' },
      concurrency: { type: 'string', short: 'c' },
      group: { type: 'string', short: 'g' },
      create: { type: 'boolean' },
      max: { type: 'string', short: 'n' },
      idle: { type: 'string' },
      raw: { type: 'boolean' },
      'max-attempts': { type: 'string' },
      backoff: { type: 'string' },
      lease: { type: 'string' },
    });
    expectPositionals(positionals, 1, 1, SYNOPSIS);
    const spool = positionals[0] as string;
    const cmd = values.exec;
    if (cmd === undefined || cmd.trim() === '') throw new UsageError(`--exec CMD is required: ${SYNOPSIS}`);
    const concurrency = values.concurrency === undefined ? 1 : parseInteger('concurrency', values.concurrency, 1, 10_000);
    const max = values.max === undefined ? undefined : parseInteger('max', values.max, 1);
    const idleMs = values.idle === undefined ? undefined : parseDuration('idle', values.idle);
    const maxAttempts = values['max-attempts'] === undefined ? undefined : parseInteger('max-attempts', values['max-attempts'], 1, 1000);
    const baseMs = values.backoff === undefined ? undefined : parseDuration('backoff', values.backoff);
    const leaseMs = values.lease === undefined ? undefined : parseDuration('lease', values.lease);
    const mode: BodyMode = values.raw ? 'raw' : 'text';
    const group = values.group ?? 'default';

    const children = new Set<ChildProcess>();
    const stop = new AbortController();
    const dispose = onStopSignals((signal, count) => {
      if (count === 1) {
        stop.abort();
        if (children.size > 0) {
          note(`spoolq: ${signal}: stopping; waiting for ${children.size} running command(s) (signal again to terminate them)`);
        }
        return;
      }
      for (const child of children) killGroup(child, 'SIGTERM');
    });
    let q: RawQueue;
    try {
      await checkNewGroup(spool, group, values.create === true);
      q = await openQueue(spool, {
        group,
        codec: 'raw',
        maxAttempts,
        leaseMs,
        backoff: baseMs === undefined ? undefined : { baseMs, maxMs: Math.max(baseMs, 60_000) },
      });
    } catch (error) {
      dispose();
      throw error;
    }
    let failed = false;
    let cannotRun: ExecError | null = null;
    const env = { SPOOLQ_GROUP: group, SPOOLQ_SPOOL: resolve(spool) };
    try {
      await work(q, { concurrency, max, idleMs, signal: stop.signal }, async (message) => {
        const status = await run(cmd, message, mode, env, children);
        if (status === 0) {
          await settle(message, 'ack');
          return;
        }
        failed = true;
        const why = status > 128 && status < 128 + 65 ? `killed by signal ${status - 128}` : `exited with status ${status}`;
        if (status === EXIT.CANNOT_EXEC || status === EXIT.NOT_FOUND) {
          await settle(message, { delayMs: 0, reason: `the command could not be run (${why})` });
          cannotRun ??= new ExecError(
            `the command ${JSON.stringify(cmd)} ${status === EXIT.NOT_FOUND ? 'was not found' : 'cannot be executed'} (/bin/sh exited with ${status}); stopped so that no more messages fail. Check --exec`,
            status,
          );
          stop.abort();
          return;
        }
        await settle(message, { reason: `the command ${why}` });
      });
    } finally {
      dispose();
      await q.close();
    }
    if (cannotRun) throw cannotRun;
    return failed ? EXIT.COMMAND_FAILED : EXIT.OK;
  },
};

/** Runs the command for one message; resolves to its exit status (128 + N if killed by signal N). */
function run(
  cmd: string,
  message: Message<Buffer>,
  mode: BodyMode,
  env: Record<string, string>,
  children: Set<ChildProcess>,
): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn('/bin/sh', ['-c', cmd], {
      stdio: ['pipe', 'inherit', 'inherit'],
      // Its own session: Ctrl-C in the terminal stops spoolq, which lets the command finish.
      detached: true,
      env: {
        ...process.env,
        ...env,
        SPOOLQ_ID: message.id,
        SPOOLQ_ATTEMPTS: String(message.attempts),
        SPOOLQ_TOPIC: message.topic ?? '',
        SPOOLQ_PRIORITY: String(message.priority),
        SPOOLQ_ENQUEUED_AT: String(message.enqueuedAt),
        SPOOLQ_HEADERS: JSON.stringify(message.headers),
      },
    });
    children.add(child);
    let settled = false;
    const done = (status: number) => {
      if (settled) return;
      settled = true;
      children.delete(child);
      resolvePromise(status);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      note(`spoolq: EEXEC: cannot start /bin/sh: ${error.message}`);
      done(error.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.CANNOT_EXEC);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1)));
    child.stdin?.on('error', () => {}); // EPIPE: the command did not read all of its stdin
    child.stdin?.end(framedBody(message, mode));
  });
}

/** Signals the command and everything it started (its process group). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}
