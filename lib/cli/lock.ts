/** spoolq lock SPOOL NAME -- CMD [ARGS...]: runs CMD holding a named lock, like flock(1). */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { type LockHandle, lock } from '../lock.js';
import {
  type Command,
  EXIT,
  ExecError,
  expectPositionals,
  formatError,
  note,
  onStopSignals,
  parse,
  parseDuration,
  type StopSignal,
  signalStatus,
  UsageError,
} from './common.js';

const SYNOPSIS = 'spoolq lock SPOOL NAME [--timeout D] [--stale D] -- CMD [ARGS...]';

const help = `
Usage: ${SYNOPSIS}

Takes the lock NAME of SPOOL (waiting while another process holds it), runs CMD with ARGS (no
shell: use sh -c '…' for one), releases the lock when CMD ends, and exits with CMD's status.
Every process that locks the same SPOOL and NAME waits for the others: at most one CMD runs at a
time, on this machine. SPOOL is created if missing.

CMD's environment has SPOOLQ_LOCK_TOKEN, the fencing token: it is larger for every new holder
of the lock, so what CMD writes can carry it and a store can refuse writes with an older token
(from a holder that was paused until it lost the lock). Also SPOOLQ_LOCK_NAME and SPOOLQ_SPOOL.

spoolq renews the lock while CMD runs. If the lock is lost anyway (spoolq was paused longer
than --stale), CMD gets SIGTERM and spoolq exits with 1 (ELOCK_COMPROMISED). SIGTERM and SIGHUP
are passed on to CMD; Ctrl-C reaches CMD from the terminal (a SIGINT to spoolq alone is not
passed on). The lock is released once CMD has ended.

Unlike flock(1), the lock is not inherited by CMD: if spoolq itself is killed (kill -9, the OOM
killer), CMD goes on running while the lock frees after --stale. Where that matters, make what
CMD writes carry SPOOLQ_LOCK_TOKEN.

Options:
  -w, --timeout D   give up after waiting D for the lock (0: try once): exit 3 (ELOCK_TIMEOUT);
                    default: wait for ever
      --stale D     how long the lock outlives a holder that stopped renewing it (default 10s,
                    at least 1s)
  -h, --help        this help

Exit: CMD's status (128+N if killed by signal N); 3 lock not taken within --timeout; 1 error or
lock lost; 2 bad usage; 126 CMD cannot be executed; 127 CMD not found; 130/143 interrupted while
waiting for the lock.

Examples:
  spoolq lock /tmp/q deploy -- ./deploy.sh --prod
  spoolq lock /tmp/q cron-report --timeout 0 -- ./report.sh || echo 'already running'
  spoolq lock /tmp/q counter -- sh -c 'n=$(cat n); echo $((n+1)) > n'
  spoolq lock /tmp/q db -- sh -c 'echo "write fenced by $SPOOLQ_LOCK_TOKEN"'
`;

export const command: Command = {
  help,
  async run(argv) {
    const separator = argv.indexOf('--');
    if (separator === -1) throw new UsageError(`put -- before the command: ${SYNOPSIS}`);
    const cmd = argv.slice(separator + 1);
    const { values, positionals } = parse(argv.slice(0, separator), {
      timeout: { type: 'string', short: 'w' },
      stale: { type: 'string' },
    });
    expectPositionals(positionals, 2, 2, SYNOPSIS);
    if (cmd.length === 0) throw new UsageError(`no command after --: ${SYNOPSIS}`);
    const [spool, name] = positionals as [string, string];
    const timeoutMs =
      values.timeout === undefined ? Number.POSITIVE_INFINITY : parseDuration('timeout', values.timeout, { infinite: true });
    const staleMs = values.stale === undefined ? undefined : parseDuration('stale', values.stale);

    // One set of signal listeners for the whole run, until the lock is released: without a
    // listener Node takes the default action, and a SIGTERM would kill us holding the lock (or
    // leave CMD running without it). What a signal does depends on the phase.
    let phase: 'waiting' | 'running' | 'releasing' = 'waiting';
    let stoppedBy: StopSignal | null = null;
    let child: ChildProcess | undefined;
    const waiting = new AbortController();
    const stopListening = onStopSignals((signal) => {
      if (phase === 'waiting') {
        stoppedBy ??= signal;
        waiting.abort(new Error(`stopped by ${signal}`));
      } else if (phase === 'running') {
        // CMD shares our process group, so Ctrl-C at a terminal reaches it directly: passing
        // SIGINT on as well would interrupt it twice (its cleanup included). As flock(1) does,
        // we only wait for it. SIGTERM and SIGHUP, usually sent to our pid alone, are passed on.
        if (signal !== 'SIGINT') child?.kill(signal);
      } // releasing: CMD has ended; finish the release, then exit with its status
    });
    try {
      let held: LockHandle;
      try {
        held = await lock(spool, name, { timeoutMs, signal: waiting.signal, ...(staleMs === undefined ? {} : { staleMs }) });
      } catch (error) {
        if (stoppedBy) return signalStatus(stoppedBy);
        throw error;
      }
      if (stoppedBy) {
        // a signal that came as the lock was taken
        phase = 'releasing';
        await held.release().catch(() => {});
        return signalStatus(stoppedBy);
      }
      phase = 'running';
      let status: number;
      try {
        status = await runHolding(
          cmd,
          held,
          { SPOOLQ_LOCK_TOKEN: String(held.token), SPOOLQ_LOCK_NAME: name, SPOOLQ_SPOOL: resolve(spool) },
          (spawned) => {
            child = spawned;
          },
        );
      } catch (error) {
        phase = 'releasing';
        await held.release().catch(() => {});
        throw error;
      }
      phase = 'releasing';
      let compromised = held.signal.aborted;
      try {
        await held.release();
      } catch (error) {
        if (!compromised) note(formatError(error, 'lock') ?? '');
        compromised = true;
      }
      return compromised ? EXIT.ERROR : status;
    } finally {
      stopListening();
    }
  },
};

/** Runs the command with the lock held; resolves to its exit status. */
function runHolding(cmd: string[], held: LockHandle, env: Record<string, string>, onSpawn: (child: ChildProcess) => void): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd[0] as string, cmd.slice(1), { stdio: 'inherit', env: { ...process.env, ...env } });
    } catch (error) {
      // Refused before any process was made (an empty name, a NUL byte): as a command not found.
      reject(new ExecError(`cannot run ${JSON.stringify(cmd[0])}: ${(error as Error).message}`, EXIT.NOT_FOUND, { cause: error }));
      return;
    }
    onSpawn(child);
    const onLost = () => {
      note(formatError(held.signal.reason, 'lock') ?? '');
      note('spoolq: sending SIGTERM to the command: it no longer holds the lock');
      child.kill('SIGTERM');
    };
    held.signal.addEventListener('abort', onLost, { once: true });
    const finish = () => {
      held.signal.removeEventListener('abort', onLost);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      finish();
      const notFound = error.code === 'ENOENT';
      reject(
        new ExecError(
          `cannot run ${JSON.stringify(cmd[0])}: ${notFound ? 'not found (check the name and PATH)' : error.message}`,
          notFound ? EXIT.NOT_FOUND : EXIT.CANNOT_EXEC,
          { cause: error },
        ),
      );
    });
    child.once('exit', (code, signal) => {
      finish();
      resolvePromise(code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1));
    });
  });
}
