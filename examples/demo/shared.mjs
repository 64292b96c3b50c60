// What the demo's processes share: the jobs and a little colour.

/** The jobs the producer pushes: a few urgent (priority 0), a few low (9), one delayed, one flaky. */
export const JOBS = [
  { task: 'send welcome email' },
  { task: 'resize avatar' },
  { task: 'generate invoice' },
  { task: 'charge card', priority: 0 },
  { task: 'sync CRM contact' },
  { task: 'call flaky API', flaky: true },
  { task: 'render thumbnail' },
  { task: 'reindex search', priority: 9 },
  { task: 'send password reset', priority: 0 },
  { task: 'transcode video' },
  { task: 'post webhook' },
  { task: 'compress logs', priority: 9 },
  { task: 'update stock level' },
  { task: 'notify on-call', priority: 0 },
  { task: 'warm cache' },
  { task: 'export CSV' },
  { task: 'clean old sessions', priority: 9 },
  { task: 'geocode address' },
  { task: 'send SMS' },
  { task: 'nightly report', delayMs: 2_000 },
].map((job, i) => ({ n: i + 1, priority: 4, ...job }));

export const JOB_COUNT = JOBS.length;

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const sgr = (code) => (text) => (color ? `\x1b[${code}m${text}\x1b[0m` : String(text));
const NAME_COLORS = { producer: 35, 'consumer-1': 36, 'consumer-2': 33 };

export const paint = {
  bold: sgr(1),
  dim: sgr(2),
  red: sgr(31),
  green: sgr(32),
  yellow: sgr(33),
  name: (name) => sgr(NAME_COLORS[name] ?? 1)(`[${name}]`.padEnd(12)),
};

export const describePriority = (p) => (p === 0 ? 'urgent' : p === 9 ? 'low' : 'normal');
