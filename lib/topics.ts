/**
 * AMQP-style topics: a topic is words separated by '.'; a pattern is words where '*'
 * matches exactly one word and '#' matches zero or more. Words may be empty ('a..b' has three
 * words, the middle one empty; '' is one empty word), as in AMQP routing keys.
 *
 * Used by push (a message's topic), by group bindings (patterns) and by routing.
 */
import { InvalidNameError } from './errors.js';

/** Longest topic or pattern, in UTF-8 bytes (AMQP's routing key limit). */
export const MAX_TOPIC_BYTES = 255;
const hasControlCharacter = (text: string) => [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

function checkText(kind: string, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidNameError(`A ${kind} must be a string, got ${value === null ? 'null' : typeof value}`);
  if (Buffer.byteLength(value) > MAX_TOPIC_BYTES) {
    throw new InvalidNameError(`The ${kind} ${JSON.stringify(value.slice(0, 40))}… is over ${MAX_TOPIC_BYTES} bytes`);
  }
  if (hasControlCharacter(value)) throw new InvalidNameError(`The ${kind} ${JSON.stringify(value)} has a control character`);
  return value;
}

/** Validates a topic a message is pushed with: no wildcards, at most 255 bytes. */
export function checkTopic(topic: unknown): string {
  const text = checkText('topic', topic);
  if (/[*#]/.test(text)) {
    throw new InvalidNameError(`The topic ${JSON.stringify(text)} has '*' or '#': those are wildcards of patterns, not of topics`);
  }
  return text;
}

/** Validates a pattern and returns its words. A wildcard must be a whole word ('a.*', not 'a*'). */
export function parsePattern(pattern: unknown): string[] {
  const words = checkText('topic pattern', pattern).split('.');
  for (const word of words) {
    if (word !== '*' && word !== '#' && /[*#]/.test(word)) {
      throw new InvalidNameError(
        `The topic pattern ${JSON.stringify(pattern)} has the word ${JSON.stringify(word)}: '*' and '#' must stand alone between dots, as in 'orders.*' or 'orders.#'`,
      );
    }
  }
  return words;
}

/** Whether `topic` matches the pattern whose words are `pattern` (see parsePattern). */
export function matchWords(pattern: readonly string[], topic: readonly string[]): boolean {
  // Memoised over (pattern word, topic word) positions: O(p × t) even with several '#'.
  const memo = new Map<number, boolean>();
  const match = (i: number, j: number): boolean => {
    if (i === pattern.length) return j === topic.length;
    const key = i * (topic.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const word = pattern[i];
    const result =
      word === '#'
        ? match(i + 1, j) || (j < topic.length && match(i, j + 1))
        : j < topic.length && (word === '*' || word === topic[j]) && match(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return match(0, 0);
}

/** Compiles a pattern (validated) into a predicate over topics. */
export function topicMatcher(pattern: string): (topic: string) => boolean {
  const words = parsePattern(pattern);
  return (topic) => matchWords(words, topic.split('.'));
}
