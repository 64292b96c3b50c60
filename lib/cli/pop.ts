/** spoolq pop SPOOL: takes one message, prints it, acks it; exit 3 when none arrived. */
import {
  type Command,
  EXIT,
  expectPositionals,
  framedBody,
  messageJson,
  openToConsume,
  optionalValue,
  out,
  parse,
  parseDuration,
  signalStatus,
  UsageError,
} from './common.js';

const SYNOPSIS = 'spoolq pop SPOOL [--wait[=D]] [--group G [--create]] [--json | --raw]';

const help = `
Usage: ${SYNOPSIS}

Takes the next message of the group, writes it to stdout, then acks it (removes it). If writing
fails (stdout closed), the message is not acked but returned to the queue at once (nack).

Output:
  (default)   the body and a newline: a message pushed as text prints as the line it was.
  --raw       the body's bytes exactly, nothing added (binary data; push --raw on the other side).
  --json      one JSON line: {"id","group","attempts","priority","enqueuedAt","topic","headers",
              "codec", and "body" (UTF-8 text) or "bodyBase64" (other bytes) or "data" (a value
              pushed as JSON)}.

Options:
  -w, --wait[=D]     wait for a message: for ever with a bare --wait, or up to D (500, 2s, 1m).
                     Without it, pop looks once and returns at once.
  -g, --group G      the group to take from (default: default)
      --create       create the group if missing (in a spool without groups it always is); it
                     then receives a copy of every message pushed
      --json         print the message with its metadata as one JSON line
      --raw          print the body's bytes exactly
  -h, --help         this help

Exit: 0 a message was printed and acked; 3 no message (in time); 130/143 interrupted while
waiting (SIGINT/SIGTERM); 1 error.

Examples:
  spoolq pop /tmp/q                          # one message, or exit 3
  spoolq pop /tmp/q --wait=5s || echo 'nothing within 5 s'
  while line=$(spoolq pop /tmp/q --wait); do echo "got $line"; done
  spoolq pop /tmp/q --json | jq -r .id
  spoolq pop /tmp/q --raw > photo.jpg
`;

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(optionalValue(argv, 'wait', 'w', 'inf'), {
      wait: { type: 'string', short: 'w' },
      group: { type: 'string', short: 'g' },
      create: { type: 'boolean' },
      json: { type: 'boolean' },
      raw: { type: 'boolean' },
    });
    expectPositionals(positionals, 1, 1, SYNOPSIS);
    const spool = positionals[0] as string;
    if (values.json && values.raw) throw new UsageError('--json and --raw exclude each other');
    const timeoutMs = values.wait === undefined ? 0 : parseDuration('wait', values.wait, { infinite: true });
    const group = values.group ?? 'default';
    const { q, stop } = await openToConsume(spool, group, values.create === true);
    try {
      let message: Awaited<ReturnType<typeof q.pop>>;
      try {
        message = await q.pop(timeoutMs === Number.POSITIVE_INFINITY ? { signal: stop.signal } : { timeoutMs, signal: stop.signal });
      } catch (error) {
        const by = stop.stopped();
        if (by) return signalStatus(by);
        throw error;
      }
      if (message === null) return EXIT.NOTHING;
      const output = values.json ? `${JSON.stringify(messageJson(message, group))}\n` : framedBody(message, values.raw ? 'raw' : 'text');
      try {
        await out(output);
      } catch (error) {
        await message.nack({ delayMs: 0, reason: 'spoolq pop could not write it to stdout' }).catch(() => {});
        throw error;
      }
      await message.ack();
      return EXIT.OK;
    } finally {
      stop.dispose();
      await q.close();
    }
  },
};
