#!/usr/bin/env node
/**
 * The `spoolq` command: dispatches to lib/cli/<command>.ts (loaded on demand, so `spoolq push`
 * does not pay for fsck), prints errors as `spoolq: CODE: …` and exits with the documented code.
 */
import { readFileSync } from 'node:fs';
import { type Command, EXIT, exitCodeOf, formatError, UsageError, wantsHelp } from './common.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  push: { summary: 'push messages from arguments or stdin; prints their ids', load: () => import('./push.js') },
  pop: { summary: 'take one message, print it and ack it (exit 3 if none)', load: () => import('./pop.js') },
  consume: { summary: 'run a shell command for each message (exit 0 acks, else nack)', load: () => import('./consume.js') },
  tail: { summary: 'consume messages and print each as a JSON line until stopped', load: () => import('./tail.js') },
  peek: { summary: 'show the next messages without taking them', load: () => import('./peek.js') },
  stats: { summary: 'ready, leased, delayed and dead counts per group (--watch: live)', load: () => import('./stats.js') },
  groups: { summary: 'list groups and their topic bindings; create, bind, unbind, delete', load: () => import('./groups.js') },
  dead: { summary: 'list, requeue or purge dead letters', load: () => import('./dead.js') },
  purge: { summary: 'remove every waiting message of a group', load: () => import('./purge.js') },
  lock: { summary: 'run a command holding a named lock, like flock(1)', load: () => import('./lock.js') },
  fsck: { summary: 'check every file of a spool; --repair quarantines bad ones', load: () => import('./fsck.js') },
};

function version(): string {
  try {
    // dist/cli/main.js → the package's package.json
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const list = Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `spoolq ${version()}: a durable message queue whose broker is a directory

Usage: spoolq COMMAND SPOOL [ARGS] [OPTIONS]
       spoolq COMMAND --help        options and examples of one command

Commands:
${list}

SPOOL is the spool directory. push, pop, consume, tail and lock create it when it is missing;
the other commands need an existing spool. Groups: consumers of one group share its messages;
every group gets a copy of each message pushed (see 'spoolq groups --help').

Messages are bytes. By default the shell side is text: push takes each argument, line or all of
stdin as one message without its trailing newline, and pop/consume/tail write a body followed by
a newline. --raw keeps the bytes exactly as they are, both ways; push --json stores JSON values.

Output: data on stdout, errors on stderr as 'spoolq: CODE: what happened and what to do'.
--json prints JSON for scripts (one object per line for lists). A progress bar is shown on a
terminal only, for long operations.

Exit codes:
  0    ok
  1    error (the code on stderr says which: ESPOOL_PATH, ESTORAGE, EGROUP_NOT_FOUND, …)
  2    bad usage: unknown option, bad value (EUSAGE, EINVALID_OPTION, EINVALID_NAME); nothing done
  3    nothing to do in time: pop found no message, lock --timeout expired
  4    fsck: problems remain
  123  consume: some command failed (its message was nacked), as with xargs
  126  consume/lock: the command cannot be executed; 127: not found
  128+N  interrupted by signal N while waiting (130: Ctrl-C)
  141  stdout was closed by its reader
  lock exits with the status of its command.

Examples:
  seq 3 | spoolq push /tmp/q --lines            # three messages: 1, 2, 3
  spoolq pop /tmp/q                             # prints 1
  spoolq consume /tmp/q --exec 'wc -c' --max 2  # runs wc -c twice, body on stdin
  spoolq stats /tmp/q --watch                   # live counts
  spoolq lock /tmp/q deploy -- ./deploy.sh      # one deploy at a time

Version: spoolq --version`;
}

/** The command running, for the hint of a usage error. */
let current: string | null = null;

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(`${mainHelp()}\n`);
    return EXIT.USAGE;
  }
  if (first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    process.stdout.write(`${mainHelp()}\n`);
    return EXIT.OK;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    process.stdout.write(`${version()}\n`);
    return EXIT.OK;
  }
  const name = first === 'help' ? (rest[0] as string) : first;
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    const what = name.startsWith('-')
      ? `unknown option ${JSON.stringify(name)} before the command`
      : `unknown command ${JSON.stringify(name)}`;
    throw new UsageError(`${what}; the commands are: ${Object.keys(COMMANDS).join(', ')}`);
  }
  const { command } = await entry.load();
  current = name;
  if (first === 'help' || wantsHelp(rest)) {
    process.stdout.write(`${command.help.trim()}\n`);
    return EXIT.OK;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => finish(code),
  (error) => {
    const text = formatError(error, current);
    if (text !== null) process.stderr.write(`${text}\n`);
    if (process.env.SPOOLQ_DEBUG && error instanceof Error && text !== null) process.stderr.write(`${error.stack}\n`);
    finish(exitCodeOf(error));
  },
);

/**
 * Sets the exit code and lets the process end by itself once every handle is closed; a handle
 * left open by mistake must not keep a finished command alive, so exit anyway after a moment.
 */
function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2_000).unref();
}
