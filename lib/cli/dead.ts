/** spoolq dead SPOOL [list|requeue|purge] [IDS...]: the dead letters of a group. */
import { listDeadLetters } from '../dead-letters.js';
import { purgeDeadLetters } from '../dead-purge.js';
import { storageError } from '../errors.js';
import { openExistingSpool } from '../existing-spool.js';
import { openQueue } from '../queue.js';
import {
  type Command,
  EXIT,
  expectPositionals,
  humanAge,
  NotFoundError,
  note,
  openExisting,
  out,
  parse,
  progress,
  requireGroup,
  table,
  UsageError,
} from './common.js';

const SYNOPSIS = 'spoolq dead SPOOL [list | requeue [IDS...] | purge [IDS...]] [--group G] [--json]';

const help = `
Usage: ${SYNOPSIS}

Dead letters are messages that failed --max-attempts deliveries (code max-attempts), whose last
lease expired (lease-expired), and files quarantined because they cannot be delivered (corrupt,
too-large, bad-name). Each keeps its reason.

  list              (default) the group's dead letters: ID, CODE, ATTEMPTS, DIED (ago), REASON
  requeue [IDS...]  returns them (those ids, or all) to the queue with a fresh count of
                    attempts; prints the ids requeued. Quarantined files cannot be requeued.
  purge [IDS...]    removes them (those ids, or all) for good; prints the ids removed

Options:
  -g, --group G     the group (default: default)
      --json        list: one JSON line per dead letter {"id","reason","code","attempts",
                    "enqueuedAt","priority","deadAt","file"}; requeue/purge: one JSON object
                    {"group","requeued"|"purged":[ids]}
  -h, --help        this help

Exit: 0; 1 error, or some IDS were not found (the others were processed: ENOT_FOUND).

Examples:
  spoolq dead /tmp/q
  spoolq dead /tmp/q requeue                         # all of them
  spoolq dead /tmp/q requeue 0a1b2c…                 # one
  spoolq dead /tmp/q list --json | jq -r 'select(.code=="corrupt") | .id' | xargs spoolq dead /tmp/q purge
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      group: { type: 'string', short: 'g' },
      json: { type: 'boolean' },
    });
    expectPositionals(positionals, 1, Number.POSITIVE_INFINITY, SYNOPSIS);
    const [spool, action = 'list', ...ids] = positionals as [string, ...string[]];
    const group = values.group ?? 'default';
    if (!['list', 'requeue', 'purge'].includes(action)) {
      throw new UsageError(`unknown action ${JSON.stringify(action)}: use list, requeue or purge`);
    }
    {
      const q = await openExisting(spool);
      await requireGroup(q, group).finally(() => q.close());
    }
    switch (action) {
      case 'list': {
        if (ids.length > 0) throw new UsageError(`list takes no ids: ${SYNOPSIS}`);
        const s = await openExistingSpool(spool);
        const letters = await listDeadLetters(s.group(group).dead).catch((error) => {
          throw storageError(error, 'list the dead letters');
        });
        if (values.json) {
          for (const letter of letters) await out(`${JSON.stringify(letter)}\n`);
        } else if (letters.length === 0) {
          note(`group ${group} has no dead letter`);
        } else {
          const now = Date.now();
          const rows = letters.map((l) => [
            l.id,
            l.code,
            String(l.attempts),
            l.deadAt === null ? '-' : humanAge(now - l.deadAt),
            l.reason.replace(/\s+/g, ' '),
          ]);
          await out(table(['ID', 'CODE', 'ATTEMPTS', 'DIED', 'REASON'], rows));
        }
        return EXIT.OK;
      }
      case 'requeue': {
        const q = await openQueue(spool, { group, codec: 'raw' });
        const bar = progress(`requeueing dead letters of ${group}`);
        let requeued: string[];
        try {
          requeued = await q.requeueDead(ids.length > 0 ? ids : undefined, { onProgress: (done, total) => bar.update(done, total) });
        } finally {
          bar.done();
          await q.close();
        }
        await report(values.json === true, group, 'requeued', requeued, ids);
        return EXIT.OK;
      }
      case 'purge': {
        const bar = progress(`purging dead letters of ${group}`);
        let purged: string[];
        try {
          purged = await purgeDeadLetters(spool, {
            group,
            ...(ids.length > 0 ? { ids } : {}),
            onProgress: (done, total) => bar.update(done, total),
          });
        } finally {
          bar.done();
        }
        await report(values.json === true, group, 'purged', purged, ids);
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown action ${JSON.stringify(action)}: use list, requeue or purge`);
    }
  },
};

/** Prints the ids processed; ENOT_FOUND for ids asked for and not processed. */
async function report(json: boolean, group: string, verb: 'requeued' | 'purged', done: string[], asked: string[]): Promise<void> {
  if (json) await out(`${JSON.stringify({ group, [verb]: done })}\n`);
  else if (done.length > 0) await out(`${done.join('\n')}\n`);
  if (!json && process.stderr.isTTY) note(`${verb} ${done.length} dead letter(s) of group ${group}`);
  const missing = asked.filter((id) => !done.includes(id));
  if (missing.length > 0) {
    const hint = verb === 'requeued' ? ' (quarantined files cannot be requeued)' : '';
    throw new NotFoundError(
      `${missing.length} of the ids given ${missing.length === 1 ? 'is' : 'are'} not ${verb === 'requeued' ? 'a requeueable' : 'a'} dead letter of group ${group}: ${missing.join(', ')}${hint}; see 'spoolq dead SPOOL list'`,
    );
  }
}
