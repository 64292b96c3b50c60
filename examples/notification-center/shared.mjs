// What the notification center's processes share: the topics, the subscribers, the output style.

/** The publisher cycles through these topics, one notification at a time. */
export const TOPICS = ['user.signup', 'order.paid', 'order.shipped', 'user.password_reset', 'order.paid', 'order.refunded'];

/**
 * Each subscriber is a process with its own durable group, bound to its patterns; `workMs` is
 * how long handling one notification takes (sending the email, writing the audit record).
 */
export const SUBSCRIBERS = {
  email: { patterns: ['user.*', 'order.paid'], workMs: 50, verb: 'sent an email for' },
  audit: { patterns: ['#'], workMs: 30, verb: 'recorded' },
};

/**
 * Leases of the subscribers: a notification held by a killed subscriber is delivered again once
 * its lease runs out. Short for the example (the default is 30 s); a running handler's lease is
 * extended every leaseMs/3, so it only has to cover a pause of the process, not the work.
 */
export const LEASE_MS = 1_000;

/** AMQP topic matching ('*' one word, '#' zero or more), for main.mjs to check the deliveries on its own. */
export function matches(pattern, topic) {
  const p = pattern.split('.');
  const t = topic.split('.');
  const at = (i, j) => {
    if (i === p.length) return j === t.length;
    if (p[i] === '#') return at(i + 1, j) || (j < t.length && at(i, j + 1));
    return j < t.length && (p[i] === '*' || p[i] === t[j]) && at(i + 1, j + 1);
  };
  return at(0, 0);
}

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const sgr = (code) => (text) => (color ? `\x1b[${code}m${text}\x1b[0m` : String(text));
const NAME_COLORS = { main: 1, publisher: 35, email: 36, audit: 33 };

export const paint = {
  bold: sgr(1),
  dim: sgr(2),
  red: sgr(31),
  green: sgr(32),
  yellow: sgr(33),
  name: (name) => sgr(NAME_COLORS[name] ?? 1)(`[${name}]`.padEnd(11)),
};

/** Prints one line as `name`. */
export const sayAs = (name) => (text) => console.log(`${paint.name(name)} ${text}`);

export const label = (n) => `#${String(n).padStart(2, '0')}`;

/** `3 notifications`, `1 notification`. */
export const plural = (k, noun) => `${k} ${noun}${k === 1 ? '' : 's'}`;
