/** spoolq peek SPOOL: the next messages of a group, without taking them. */
import { peek } from '../peek.js';
import { bodyText, type Command, EXIT, expectPositionals, humanAge, messageJson, note, out, parse, parseInteger, table } from './common.js';

const SYNOPSIS = 'spoolq peek SPOOL [-n N] [--group G] [--delayed] [--json]';

const help = `
Usage: ${SYNOPSIS}

Shows the next N messages of the group in delivery order (priority, then age) without taking
them: nothing changes in the spool, and a consumer may take them a moment later.

Output: a table (ID, PRI, ATTEMPT, AGE since pushed, DUE for a delayed one, TOPIC, BYTES,
BODY: the start of the text, or <binary>); --json: one JSON line per message, as pop --json
prints it, plus "visibleAt" (when it is or was due, ms since the epoch).

Options:
  -n, --count N     how many (default 10)
  -g, --group G     the group (default: default)
      --delayed     include messages that are not due yet
      --json        one JSON line per message
  -h, --help        this help

Exit: 0 (also when the group is empty); 1 error (no such spool or group).

Examples:
  spoolq peek /tmp/q
  spoolq peek /tmp/q -n 100 --json | jq -r .body
  spoolq peek /tmp/q --group audit --delayed
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      count: { type: 'string', short: 'n' },
      group: { type: 'string', short: 'g' },
      delayed: { type: 'boolean' },
      json: { type: 'boolean' },
    });
    expectPositionals(positionals, 1, 1, SYNOPSIS);
    const limit = values.count === undefined ? 10 : parseInteger('count', values.count, 0, 1_000_000);
    const group = values.group ?? 'default';
    const messages = await peek(positionals[0] as string, {
      group,
      limit,
      includeDelayed: values.delayed === true,
      onSkip: (file, reason) => note(`spoolq: warning: skipped ${file}: ${reason} (a consumer or 'spoolq fsck --repair' quarantines it)`),
    });
    if (values.json) {
      for (const m of messages) await out(`${JSON.stringify({ ...messageJson(m, group), visibleAt: m.visibleAt })}\n`);
      return EXIT.OK;
    }
    if (messages.length === 0) {
      note(`group ${group} has no ${values.delayed ? '' : 'ready '}message`);
      return EXIT.OK;
    }
    const now = Date.now();
    const rows = messages.map((m) => [
      m.id,
      String(m.priority),
      String(m.attempts),
      humanAge(now - m.enqueuedAt),
      m.visibleAt > now ? `in ${humanAge(m.visibleAt - now)}` : 'now',
      m.topic ?? '-',
      String(m.body.length),
      preview(m.codec === 'json' ? JSON.stringify(m.data) : bodyText(m.body)),
    ]);
    await out(table(['ID', 'PRI', 'ATTEMPT', 'AGE', 'DUE', 'TOPIC', 'BYTES', 'BODY'], rows));
    return EXIT.OK;
  },
};

/** The start of a text on one line, control characters escaped; <binary> for other bytes. */
function preview(text: string | null, width = 60): string {
  if (text === null) return '<binary>';
  const escaped = JSON.stringify(text).slice(1, -1);
  return escaped.length > width ? `${escaped.slice(0, width - 1)}…` : escaped;
}
