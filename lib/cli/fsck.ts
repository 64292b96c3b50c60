/** spoolq fsck SPOOL [--repair]: checks every file and name of a spool. */
import { type FsckProblem, fsck } from '../fsck.js';
import { MAX_MESSAGE_BYTES_LIMIT } from '../options.js';
import { type Command, EXIT, expectPositionals, out, parse, parseInteger, progress } from './common.js';

const SYNOPSIS = 'spoolq fsck SPOOL [--repair] [--json] [--max-message-bytes N] [--max-attempts N]';

const help = `
Usage: ${SYNOPSIS}

Checks the whole spool: its format file and directories, the name of every bucket, ready,
leased and dead entry, the header, length, CRC and attributes of every message file, topic
bindings, locks, and files left by crashed processes. Prints each problem, then a summary.
Without --repair nothing is changed (except tmp/ and groups/ being recreated if missing, as any
open does). fsck is safe while producers and consumers run; with --repair it changes the spool
only as they would:

  corrupt, too-large   a message file that fails its checks → quarantined into the group's dead/
  bad-name, stray      a name that is not spoolq's, inside a group → quarantined into dead/
  bad-binding          a topics/ entry that is not a valid pattern → quarantined into dead/
  expired-lease        a lease whose consumer died → returned to ready/ (to dead/ after
                       --max-attempts deliveries)
  stale-tmp            a file of a producer that died over an hour ago → removed
  orphan-reason        a .why file whose dead letter is gone → removed
  missing              a directory of a group → created
  unsafe, bad-lock, stray outside groups   → reported only: a person decides

Quarantined files are listed by 'spoolq dead SPOOL list' with their reason; nothing is deleted.

Options:
      --repair               repair what can be repaired
      --json                 print the report as one JSON object: {"spool","repair","groups",
                             "checked","ready","delayed","leased","dead","problems":[{"kind",
                             "path","group","reason","repair","repaired"}],"remaining"}
      --max-message-bytes N  also report messages over N bytes of payload (as consumers with
                             that maxMessageBytes would quarantine them)
      --max-attempts N       expired leases of this attempt go to dead/ (default 5)
  -h, --help                 this help

A progress bar is shown on a terminal. Exit: 0 sound (or every problem repaired); 4 problems
remain; 1 error (not a spool, unreadable).

Examples:
  spoolq fsck /tmp/q
  spoolq fsck /tmp/q --repair
  spoolq fsck /tmp/q --json | jq '.problems[] | select(.repaired | not)'
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      repair: { type: 'boolean' },
      json: { type: 'boolean' },
      'max-message-bytes': { type: 'string' },
      'max-attempts': { type: 'string' },
    });
    expectPositionals(positionals, 1, 1, SYNOPSIS);
    const repair = values.repair === true;
    const bar = progress(repair ? 'checking and repairing' : 'checking');
    let report: Awaited<ReturnType<typeof fsck>>;
    try {
      report = await fsck(positionals[0] as string, {
        repair,
        ...(values['max-message-bytes'] === undefined
          ? {}
          : { maxMessageBytes: parseInteger('max-message-bytes', values['max-message-bytes'], 1, MAX_MESSAGE_BYTES_LIMIT) }),
        ...(values['max-attempts'] === undefined ? {} : { maxAttempts: parseInteger('max-attempts', values['max-attempts'], 1, 1000) }),
        onProgress: (done, total) => bar.update(done, total),
      });
    } finally {
      bar.done();
    }
    if (values.json) {
      await out(`${JSON.stringify(report)}\n`);
    } else {
      for (const problem of report.problems) await out(`${line(problem, repair)}\n`);
      const n = report.problems.length;
      const counts = `${report.ready} ready, ${report.delayed} delayed, ${report.leased} leased, ${report.dead} dead`;
      const verdict =
        n === 0 ? 'no problem' : `${n} problem${n === 1 ? '' : 's'}, ${n - report.remaining} repaired, ${report.remaining} remaining`;
      const hint = report.remaining > 0 && !repair && report.problems.some((p) => p.repair !== null) ? ' (run with --repair)' : '';
      await out(
        `${report.spool}: ${report.groups} group${report.groups === 1 ? '' : 's'}, ${report.checked} message file${report.checked === 1 ? '' : 's'} checked (${counts}): ${verdict}${hint}\n`,
      );
    }
    return report.remaining > 0 ? EXIT.PROBLEMS : EXIT.OK;
  },
};

function line(p: FsckProblem, repairMode: boolean): string {
  let outcome: string;
  if (p.repaired) outcome = `repaired: ${p.repair}`;
  else if (p.repair === null) outcome = 'not repairable by fsck: a person has to decide';
  else if (repairMode) outcome = `not repaired: ${p.repair}`;
  else outcome = `--repair would ${p.repair}`;
  return `${p.kind}: ${p.path}: ${p.reason} [${outcome}]`;
}
