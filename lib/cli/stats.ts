/** spoolq stats SPOOL: per group counts; --watch refreshes them. */
import { setTimeout as sleep } from 'node:timers/promises';
import { GroupNotFoundError } from '../errors.js';
import type { QueueStats } from '../queue.js';
import {
  type Command,
  EXIT,
  expectPositionals,
  humanAge,
  openExisting,
  out,
  parse,
  parseDuration,
  type RawQueue,
  requireGroup,
  stopController,
  table,
} from './common.js';

const SYNOPSIS = 'spoolq stats SPOOL [--group G] [--json] [--watch [--interval D]]';

const help = `
Usage: ${SYNOPSIS}

Counts the messages of each group of SPOOL (or of one, with --group):
  READY    due, waiting to be taken
  LEASED   taken by a consumer and not yet acked (or its consumer died: back after the lease)
  DELAYED  not due yet (push --delay, or nacked and waiting for its retry)
  DEAD     dead letters and quarantined files ('spoolq dead SPOOL list')
  OLDEST   how long the oldest ready message has been waiting

Counting lists the group's directories: it takes time in proportion to the backlog.

Options:
  -g, --group G       only this group
      --json          one JSON object: {"spool","at","groups":{"<name>":{"ready","leased",
                      "delayed","dead","oldestReadyAgeMs"}}}; with --watch, one per line
  -w, --watch         refresh until Ctrl-C: a live table on a terminal, else one table (or
                      JSON line) per refresh
      --interval D    time between refreshes (default 1s)
  -h, --help          this help

Exit: 0; 1 error (no such spool or group).

Examples:
  spoolq stats /tmp/q
  spoolq stats /tmp/q --json | jq '.groups.default.ready'
  spoolq stats /tmp/q --watch --interval 500ms
`;

type GroupStats = Omit<QueueStats, 'unrouted'>;

interface Snapshot {
  spool: string;
  at: number;
  groups: Record<string, GroupStats>;
}

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      group: { type: 'string', short: 'g' },
      json: { type: 'boolean' },
      watch: { type: 'boolean', short: 'w' },
      interval: { type: 'string' },
    });
    expectPositionals(positionals, 1, 1, SYNOPSIS);
    const intervalMs = values.interval === undefined ? 1_000 : parseDuration('interval', values.interval);
    const q = await openExisting(positionals[0] as string);
    try {
      if (values.group !== undefined) await requireGroup(q, values.group);
      const render = (s: Snapshot) => (values.json ? `${JSON.stringify(s)}\n` : humanTable(s));
      if (!values.watch) {
        await out(render(await snapshot(q, values.group)));
        return EXIT.OK;
      }
      const stop = stopController();
      const live = process.stdout.isTTY && !values.json;
      let lines = 0;
      try {
        while (!stop.signal.aborted) {
          const s = await snapshot(q, values.group);
          if (live) {
            const frame = `spoolq stats ${s.spool}   ${new Date(s.at).toLocaleTimeString()}   (every ${humanAge(intervalMs)}; Ctrl-C to stop)\n\n${humanTable(s)}`;
            await out(`${lines > 0 ? `\x1b[${lines}F\x1b[J` : ''}${frame}`);
            lines = frame.split('\n').length - 1;
          } else {
            await out(values.json ? render(s) : `${new Date(s.at).toISOString()}\n${render(s)}\n`);
          }
          await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => {});
        }
      } finally {
        stop.dispose();
      }
      return EXIT.OK;
    } finally {
      await q.close();
    }
  },
};

async function snapshot(q: RawQueue, only: string | undefined): Promise<Snapshot> {
  const names = only !== undefined ? [only] : (await q.groups()).map((g) => g.name);
  const groups: Record<string, GroupStats> = {};
  for (const name of names) {
    try {
      const { unrouted: _, ...counts } = await q.stats(name);
      groups[name] = counts;
    } catch (error) {
      if (!(error instanceof GroupNotFoundError) || only !== undefined) throw error; // deleted meanwhile
    }
  }
  return { spool: q.dir, at: Date.now(), groups };
}

function humanTable(s: Snapshot): string {
  const rows = Object.entries(s.groups).map(([name, g]) => [
    name,
    String(g.ready),
    String(g.leased),
    String(g.delayed),
    String(g.dead),
    humanAge(g.oldestReadyAgeMs),
  ]);
  if (rows.length === 0) return `no groups in ${s.spool}\n`;
  return table(['GROUP', 'READY', 'LEASED', 'DELAYED', 'DEAD', 'OLDEST'], rows);
}
