/** spoolq groups SPOOL [list|create|bind|unbind|delete]: subscriber groups and their bindings. */
import { openQueue } from '../queue.js';
import { type Command, EXIT, expectPositionals, NotFoundError, openExisting, out, parse, table, UsageError } from './common.js';

const SYNOPSIS = 'spoolq groups SPOOL [list | create G [PATTERN...] | bind G PATTERN... | unbind G PATTERN... | delete G] [--json]';

const help = `
Usage: ${SYNOPSIS}

A group is a queue inside the spool: consumers of one group share its messages, and every group
gets its own copy of each message pushed, if its topic patterns match the message's topic
(AMQP style: words separated by '.', '*' one word, '#' zero or more; '#' also takes messages
pushed without a topic). A new group starts empty: it receives what is pushed after it exists.

  list                   (default) the groups and their patterns
  create G [PATTERN...]  creates G (and the spool) bound to the patterns, or to '#' without
                         any; an existing G is bound to exactly the patterns given
  bind G PATTERN...      adds patterns to G's bindings
  unbind G PATTERN...    removes patterns (a group bound to nothing receives nothing)
  delete G               deletes G and every message in it

Options:
      --json       list: one JSON line per group {"name","topics"}
  -h, --help       this help

Exit: 0; 1 error (EGROUP_NOT_FOUND, ENOT_FOUND…); 2 bad usage or an invalid name or pattern.

Examples:
  spoolq groups /tmp/q
  spoolq groups /tmp/q create billing 'orders.*' 'refunds.#'
  spoolq groups /tmp/q bind audit '#'
  spoolq groups /tmp/q delete billing
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
    expectPositionals(positionals, 1, Number.POSITIVE_INFINITY, SYNOPSIS);
    const [spool, action = 'list', group, ...patterns] = positionals as [string, ...string[]];
    switch (action) {
      case 'list': {
        expectPositionals(positionals, 1, 2, SYNOPSIS);
        const q = await openExisting(spool);
        try {
          const groups = await q.groups();
          if (values.json) {
            for (const g of groups) await out(`${JSON.stringify(g)}\n`);
          } else if (groups.length === 0) {
            await out(`no groups in ${q.dir}\n`);
          } else {
            await out(
              table(
                ['GROUP', 'TOPICS'],
                groups.map((g) => [g.name, g.topics.length > 0 ? g.topics.join(' ') : '(none: receives nothing)']),
              ),
            );
          }
        } finally {
          await q.close();
        }
        return EXIT.OK;
      }
      case 'create': {
        if (group === undefined) throw new UsageError('create needs a group name: spoolq groups SPOOL create G [PATTERN...]');
        const q = await openQueue(spool, { group, topics: patterns.length > 0 ? patterns : undefined });
        try {
          const info = (await q.groups()).find((g) => g.name === group);
          await out(`group ${group}: ${info?.topics.join(' ') || '(no pattern)'}\n`);
        } finally {
          await q.close();
        }
        return EXIT.OK;
      }
      case 'bind':
      case 'unbind': {
        if (group === undefined || patterns.length === 0) {
          throw new UsageError(`${action} needs a group and patterns: spoolq groups SPOOL ${action} G PATTERN...`);
        }
        const q = await openExisting(spool);
        try {
          await (action === 'bind' ? q.bind(group, patterns) : q.unbind(group, patterns));
          const info = (await q.groups()).find((g) => g.name === group);
          await out(`group ${group}: ${info?.topics.join(' ') || '(no pattern: receives nothing)'}\n`);
        } finally {
          await q.close();
        }
        return EXIT.OK;
      }
      case 'delete': {
        if (group === undefined) throw new UsageError('delete needs a group name: spoolq groups SPOOL delete G');
        expectPositionals(positionals, 3, 3, SYNOPSIS);
        const q = await openExisting(spool);
        try {
          if (!(await q.deleteGroup(group)))
            throw new NotFoundError(`There is no group ${group} in the spool at ${q.dir}; nothing was deleted`);
        } finally {
          await q.close();
        }
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown action ${JSON.stringify(action)}: use list, create, bind, unbind or delete`);
    }
  },
};
