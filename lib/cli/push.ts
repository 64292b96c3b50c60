/** spoolq push SPOOL [DATA...]: messages from arguments or stdin; prints their ids. */
import type { Readable } from 'node:stream';
import { MessageEncodeError, MessageTooLargeError } from '../errors.js';
import type { Durability } from '../options.js';
import type { PushOptions } from '../publisher.js';
import { type GroupInfo, openQueue, type Queue } from '../queue.js';
import { acceptor } from '../routing.js';
import { type Command, EXIT, expectPositionals, note, out, parse, parseDuration, parseInteger, readStdin, UsageError } from './common.js';

const SYNOPSIS = 'spoolq push SPOOL [DATA...] [--lines] [--raw | --json] [--priority P] [--delay D] [--topic T] [--header K=V]...';

const help = `
Usage: ${SYNOPSIS}

Pushes messages to every group of SPOOL (those bound to a pattern matching --topic, if given),
and prints the id of each, one per line, once it is durable. Each DATA argument is a message;
without DATA, stdin is: all of it as one message, or one message per line with --lines (pushed
as they arrive, so 'tail -f log | spoolq push SPOOL --lines' works). SPOOL is created when it is
missing, and a spool without any group gets the group 'default' (the one that pop, consume and
tail use by default), so that nothing pushed before the first consumer starts is lost.

How data is read (messages are bytes; the choice decides what is added or removed):
  (default)   text: one trailing newline is removed from each message (lines lose their "\\n",
              stdin its final newline). pop, consume and tail add it back when they write a body.
  --raw       bytes exactly as given: nothing removed; with --lines each line keeps its "\\n".
              Use it for binary data, with pop/consume --raw on the other side.
  --json      each message is a JSON value, validated and stored with the json codec (a library
              consumer with codec 'json' gets the value; tail and pop --json show it as "data").
              Blank lines are skipped with --lines. Stops at the first invalid one.

Options:
  -l, --lines           one message per line of stdin (a final line without newline counts)
      --raw             bytes as given (see above)
      --json            JSON values (see above)
  -p, --priority P      0 (first) to 9 (last); default 4
  -d, --delay D         not delivered before D: 500 (ms), 500ms, 10s, 5m, 1h
  -t, --topic T         route to the groups bound to a pattern matching T (e.g. orders.created)
  -H, --header K=V      a header delivered with the message; repeatable
      --durability M    fsync (default: a printed id survives power loss) or none (survives
                        process crashes; the OS flushes later; much faster for many messages)
  -q, --quiet           do not print the ids
  -h, --help            this help

Exit: 0 pushed; 1 error (ids printed before it were pushed); 2 bad usage (nothing pushed).
A message that matches no group is dropped, with a warning on stderr.

Examples:
  spoolq push /tmp/q 'hello'                       # one message: hello
  spoolq push /tmp/q a b c                         # three messages
  seq 1000 | spoolq push /tmp/q --lines            # 1000 messages: 1 … 1000
  spoolq push /tmp/q --raw < photo.jpg             # one message, exact bytes
  echo '{"to":"ada"}' | spoolq push /tmp/q --json  # one JSON message
  spoolq push /tmp/q --topic orders.created -H source=shop -p 0 'order 42'
  spoolq push /tmp/q --delay 10s 'later'
`;

type Mode = 'text' | 'raw' | 'json';

export const command: Command = {
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      lines: { type: 'boolean', short: 'l' },
      raw: { type: 'boolean' },
      json: { type: 'boolean' },
      priority: { type: 'string', short: 'p' },
      delay: { type: 'string', short: 'd' },
      topic: { type: 'string', short: 't' },
      header: { type: 'string', short: 'H', multiple: true },
      durability: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
    });
    expectPositionals(positionals, 1, Number.POSITIVE_INFINITY, SYNOPSIS);
    const [spool, ...data] = positionals as [string, ...string[]];
    if (values.raw && values.json) throw new UsageError('--raw and --json exclude each other: raw stores bytes, json stores JSON values');
    const mode: Mode = values.raw ? 'raw' : values.json ? 'json' : 'text';
    if (values.lines && data.length > 0)
      throw new UsageError('--lines splits stdin; with DATA arguments each argument is already one message');
    if (data.length === 0 && process.stdin.isTTY) {
      throw new UsageError('no data: give DATA arguments, or pipe data into stdin (e.g. echo hello | spoolq push SPOOL)');
    }
    const options: PushOptions = {};
    if (values.priority !== undefined) options.priority = parseInteger('priority', values.priority, 0, 9);
    if (values.delay !== undefined) options.delayMs = parseDuration('delay', values.delay);
    if (values.topic !== undefined) options.topic = values.topic;
    if (values.header) options.headers = parseHeaders(values.header);
    const durability = values.durability ?? 'fsync';
    if (durability !== 'fsync' && durability !== 'none')
      throw new UsageError(`--durability takes fsync or none; got ${JSON.stringify(durability)}`);

    // Arguments are all checked before anything is pushed.
    if (mode === 'json') {
      for (const [i, d] of data.entries()) parseJson({ body: Buffer.from(d), number: i + 1 }, true);
    }

    const q = await openQueue(spool, { group: null, codec: mode === 'json' ? 'json' : 'raw', durability: durability as Durability });
    try {
      const groups = await ensureAGroup(q, spool, durability as Durability);
      let pushed = 0;
      const push = async (messages: Numbered[]) => {
        const items: unknown[] = [];
        let invalid: unknown = null;
        for (const m of messages) {
          try {
            items.push(mode === 'json' ? parseJson(m, data.length > 0) : m.body);
          } catch (error) {
            invalid = error; // push the messages before it, then report it
            break;
          }
        }
        if (items.length > 0) {
          const ids = await q.pushMany(items as Array<string | Uint8Array>, options);
          pushed += ids.length;
          if (!values.quiet) await out(`${ids.join('\n')}\n`);
        }
        if (invalid !== null) throw invalid;
      };
      if (data.length > 0) {
        await push(data.map((d, i) => ({ body: strip(Buffer.from(d), mode), number: i + 1 })));
      } else if (values.lines) {
        await readLines(process.stdin, mode, q.options.maxMessageBytes, push);
      } else {
        await push([{ body: strip(await readStdin(q.options.maxMessageBytes), mode), number: 1 }]);
      }
      if (pushed > 0 && !routes(groups, options.topic)) {
        note(
          `spoolq: warning: no group of ${q.dir} is bound to a pattern matching ${options.topic === undefined ? 'messages without a topic' : `the topic ${JSON.stringify(options.topic)}`}: ${pushed === 1 ? 'the message was' : `the ${pushed} messages were`} dropped (see 'spoolq groups ${spool}')`,
        );
      }
    } finally {
      await q.close();
    }
    return EXIT.OK;
  },
};

function parseHeaders(pairs: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--header takes KEY=VALUE (e.g. --header source=cron); got ${JSON.stringify(pair)}`);
    headers[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return headers;
}

/** text and json: one trailing newline is not part of the message. */
function strip(message: Buffer, mode: Mode): Buffer {
  if (mode === 'raw' || message.length === 0 || message[message.length - 1] !== 0x0a) return message;
  return message.subarray(0, message.length - 1);
}

/** A message and its number: the argument's or the line's, for error messages. */
interface Numbered {
  body: Buffer;
  number: number;
}

function parseJson({ body, number }: Numbered, fromArguments: boolean): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    const where = fromArguments
      ? `argument ${number} is not valid JSON (${(error as Error).message}); nothing was pushed`
      : `line ${number} is not valid JSON (${(error as Error).message}); the lines before it were pushed (their ids are printed)`;
    throw new MessageEncodeError(`${where}. Fix it, or push it without --json`);
  }
}

/**
 * Splits `input` into lines as it arrives and pushes the lines of each chunk read as one commit:
 * a fast producer gets batches, a slow one (tail -f) gets each line pushed at once.
 */
async function readLines(input: Readable, mode: Mode, maxMessageBytes: number, push: (lines: Numbered[]) => Promise<void>): Promise<void> {
  // The line not ended yet, as pieces: joined once at its newline, so a long line costs O(n).
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let number = 1;
  const take = (lines: Buffer[]) => {
    const numbered = lines.map((body) => ({ body, number: number++ }));
    return push(mode === 'json' ? numbered.filter((l) => l.body.toString('utf8').trim() !== '') : numbered);
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const end = chunk.subarray(start, mode === 'raw' ? nl + 1 : nl);
      lines.push(pending.length > 0 ? Buffer.concat([...pending, end]) : end);
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
    }
    if (pendingBytes > maxMessageBytes) {
      throw new MessageTooLargeError(
        `line ${number + lines.length} is over ${maxMessageBytes} bytes (maxMessageBytes) and has no end yet; is the input really line-oriented? Without --lines all of stdin is one message`,
      );
    }
    if (lines.length > 0) await take(lines);
  }
  if (pendingBytes > 0) await take([Buffer.concat(pending)]);
}

/** A spool with no group would drop every push: give it 'default', as openQueue(dir) does. */
async function ensureAGroup(q: Queue<unknown, unknown>, spool: string, durability: Durability): Promise<GroupInfo[]> {
  const groups = await q.groups();
  if (groups.length > 0) return groups;
  const handle = await openQueue(spool, { group: 'default', durability });
  await handle.close();
  return q.groups();
}

/** Whether some group receives a message with `topic` (routing.ts's rule). */
function routes(groups: GroupInfo[], topic: string | undefined): boolean {
  return groups.some((g) => acceptor(g.topics)(topic));
}
