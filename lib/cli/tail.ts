/** spoolq tail SPOOL: consumes messages and prints each as a JSON line until stopped. */
import {
  type Command,
  EXIT,
  expectPositionals,
  messageJson,
  openToConsume,
  out,
  parse,
  parseDuration,
  parseInteger,
  settle,
} from './common.js';
import { work } from './work.js';

const SYNOPSIS = 'spoolq tail SPOOL [--group G] [--max N] [--idle D]';

const help = `
Usage: ${SYNOPSIS}

Consumes the group's messages as they arrive and prints each as one JSON line, then acks it,
until stopped (Ctrl-C, SIGTERM), --max messages, or --idle. tail takes the messages: another
consumer of the same group does not get them. To watch without taking, use a group of its own
(--group watch --create: it receives a copy of every message pushed after it was created) or
'spoolq peek'.

Each line: {"id","group","attempts","priority","enqueuedAt","topic","headers","codec", and
"body" (UTF-8 text) or "bodyBase64" (other bytes) or "data" (a value pushed as JSON)}.

Options:
  -g, --group G     the group to consume (default: default)
      --create      create the group if missing (in a spool without groups it always is)
  -n, --max N       stop after N messages
      --idle D      stop when no message arrived for D (500, 2s, 1m)
  -h, --help        this help

Exit: 0 stopped (signal, --max, --idle); 141 stdout closed (the message being written is
returned to the queue); 1 error.

Examples:
  spoolq tail /tmp/q
  spoolq tail /tmp/q --group audit | jq -r '.body'
  spoolq tail /tmp/q --max 10 --idle 2s > batch.ndjson
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      group: { type: 'string', short: 'g' },
      create: { type: 'boolean' },
      max: { type: 'string', short: 'n' },
      idle: { type: 'string' },
    });
    expectPositionals(positionals, 1, 1, SYNOPSIS);
    const spool = positionals[0] as string;
    const max = values.max === undefined ? undefined : parseInteger('max', values.max, 1);
    const idleMs = values.idle === undefined ? undefined : parseDuration('idle', values.idle);
    const group = values.group ?? 'default';
    const { q, stop } = await openToConsume(spool, group, values.create === true);
    try {
      await work(q, { concurrency: 1, max, idleMs, signal: stop.signal }, async (message) => {
        try {
          await out(`${JSON.stringify(messageJson(message, group))}\n`);
        } catch (error) {
          await message.nack({ delayMs: 0, reason: 'spoolq tail could not write it to stdout' }).catch(() => {});
          throw error;
        }
        await settle(message, 'ack');
      });
    } finally {
      stop.dispose();
      await q.close();
    }
    return EXIT.OK;
  },
};
