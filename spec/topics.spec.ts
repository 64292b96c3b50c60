import { describe, expect, it } from 'vitest';
import { SpoolqError } from '../lib/index.js';
import { checkTopic, parsePattern, topicMatcher } from '../lib/topics.js';

// [pattern, topics it matches, topics it does not match]
const table: Array<[string, string[], string[]]> = [
  ['orders.created', ['orders.created'], ['orders', 'orders.created.eu', 'orders.deleted', 'x.orders.created']],
  ['orders.*', ['orders.created', 'orders.'], ['orders', 'orders.created.eu', 'invoices.created']],
  ['*.orange.*', ['quick.orange.rabbit', '.orange.'], ['orange', 'quick.orange', 'quick.orange.male.rabbit']],
  ['*.*.rabbit', ['quick.orange.rabbit', 'lazy.pink.rabbit'], ['rabbit', 'orange.rabbit', 'a.b.c.rabbit']],
  ['lazy.#', ['lazy', 'lazy.orange', 'lazy.orange.male.rabbit', 'lazy.'], ['lazyx', 'quick.lazy', 'x.lazy.y']],
  ['#', ['', 'a', 'a.b.c', '..'], []],
  ['#.#', ['', 'a', 'a.b.c'], []],
  ['*', ['a', ''], ['a.b', '.']],
  // '#' in the middle: zero or more words between
  ['a.#.b', ['a.b', 'a.x.b', 'a.x.y.b', 'a..b'], ['a', 'b', 'a.b.c', 'x.a.b']],
  ['#.b', ['b', 'a.b', 'a.x.b', '.b'], ['a.b.c', 'ab']],
  ['a.#.#.b', ['a.b', 'a.x.b', 'a.x.y.z.b'], ['a.x', 'x.b']],
  ['#.b.#', ['b', 'a.b', 'b.c', 'a.b.c', 'x.y.b.z.w'], ['a.c', 'ab']],
  ['a.*.#', ['a.b', 'a.b.c.d', 'a.'], ['a', 'b.c']],
  // empty words are words
  ['a..b', ['a..b'], ['a.b', 'a.x.b']],
  ['a.*.b', ['a..b', 'a.x.b'], ['a.b', 'a.x.y.b']],
  ['', [''], ['a', '.']],
];

describe('topic patterns (AMQP: * is one word, # is zero or more)', () => {
  for (const [pattern, yes, no] of table) {
    it(`${JSON.stringify(pattern)}`, () => {
      const matches = topicMatcher(pattern);
      for (const topic of yes) expect(matches(topic), `${pattern} should match ${JSON.stringify(topic)}`).toBe(true);
      for (const topic of no) expect(matches(topic), `${pattern} should not match ${JSON.stringify(topic)}`).toBe(false);
    });
  }

  it('ends with many #: without memoisation this input would take exponential time', () => {
    const matches = topicMatcher(`${Array.from({ length: 40 }, () => '#').join('.')}.z`);
    expect(matches(Array.from({ length: 60 }, () => 'a').join('.'))).toBe(false);
    expect(matches(`${Array.from({ length: 60 }, () => 'a').join('.')}.z`)).toBe(true);
  });
});

describe('invalid patterns and topics are refused with a typed error', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(SpoolqError);
      return (error as SpoolqError).code;
    }
    return 'no error';
  };
  it.each(['a*', 'a.b#', '*x', 'or#ders.*', 'x'.repeat(256), 'tab\there', 42, null])('pattern %j', (pattern) => {
    expect(code(() => parsePattern(pattern))).toBe('EINVALID_NAME');
  });
  it.each(['a.*', '#', 'a.#.b', 'x'.repeat(256), 'new\nline', undefined])('topic %j', (topic) => {
    expect(code(() => checkTopic(topic))).toBe('EINVALID_NAME');
  });
  it('a 255-byte topic of multi-byte characters is counted in bytes', () => {
    expect(code(() => checkTopic('é'.repeat(127)))).toBe('no error'); // 254 bytes
    expect(code(() => checkTopic('é'.repeat(128)))).toBe('EINVALID_NAME'); // 256 bytes
  });
});
