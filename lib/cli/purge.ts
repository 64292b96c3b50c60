/** spoolq purge SPOOL: removes every waiting message of a group. */
import { openQueue } from '../queue.js';
import { type Command, EXIT, expectPositionals, openExisting, out, parse, progress, requireGroup } from './common.js';

const SYNOPSIS = 'spoolq purge SPOOL [--group G] [--json]';

const help = `
Usage: ${SYNOPSIS}

Removes every waiting message of the group: ready and delayed ones. Messages being handled by a
consumer (leased) and dead letters stay ('spoolq dead SPOOL purge' removes dead letters). Other
groups keep their copies. There is no undo.

Options:
  -g, --group G     the group (default: default)
      --json        {"group","purged":N}
  -h, --help        this help

Prints the number of messages removed. Exit: 0; 1 error (no such spool or group).

Examples:
  spoolq purge /tmp/q
  spoolq purge /tmp/q --group billing --json
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      group: { type: 'string', short: 'g' },
      json: { type: 'boolean' },
    });
    expectPositionals(positionals, 1, 1, SYNOPSIS);
    const spool = positionals[0] as string;
    const group = values.group ?? 'default';
    {
      const q = await openExisting(spool);
      await requireGroup(q, group).finally(() => q.close());
    }
    const q = await openQueue(spool, { group, codec: 'raw' });
    const bar = progress(`purging group ${group}`);
    let purged: number;
    try {
      purged = await q.purge({ onProgress: (done, total) => bar.update(done, total) });
    } finally {
      bar.done();
      await q.close();
    }
    await out(values.json ? `${JSON.stringify({ group, purged })}\n` : `purged ${purged} message(s) from group ${group}\n`);
    return EXIT.OK;
  },
};
