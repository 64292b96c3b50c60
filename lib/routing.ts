/**
 * Which groups a publish delivers to. Read from the disk at each publish, once for all of its
 * messages: a listing of groups/ and one of each group's topics/. So a group created or rebound
 * by any process before a push is called gets that push, without a cache to invalidate, and a
 * publish (pushMany included) reaches each group whole or not at all.
 *
 * A message with a topic goes to every group with a matching pattern; a message without one
 * only to groups bound to '#' (every group opened without `topics` is).
 */
import { MATCH_ALL, readPatterns } from './bindings.js';
import type { GroupPaths, Spool } from './layout.js';
import { topicMatcher } from './topics.js';

export interface Route {
  readonly group: GroupPaths;
  /** Whether a message with this topic (undefined: none) is delivered to the group. */
  accepts(topic: string | undefined): boolean;
}

type Matcher = (topic: string) => boolean;

/** Compiled patterns, shared by every publisher of the process; bounded. */
const matchers = new Map<string, Matcher>();
const MAX_MATCHERS = 10_000;

function matcher(pattern: string): Matcher {
  let match = matchers.get(pattern);
  if (match === undefined) {
    if (matchers.size >= MAX_MATCHERS) matchers.clear();
    match = topicMatcher(pattern);
    matchers.set(pattern, match);
  }
  return match;
}

/**
 * Whether a group bound to `patterns` (null: a group made before bindings existed, bound to
 * '#') receives a message with `topic` (undefined: none).
 */
export function acceptor(patterns: readonly string[] | null): (topic: string | undefined) => boolean {
  if (patterns === null || patterns.includes(MATCH_ALL)) return () => true;
  const matchers = patterns.flatMap((p) => {
    try {
      return [matcher(p)];
    } catch {
      return []; // not a valid pattern (written by hand): matches nothing
    }
  });
  return (topic) => topic !== undefined && matchers.some((match) => match(topic));
}

/** The routes of every group that exists now. */
export async function readRoutes(spool: Spool): Promise<Route[]> {
  const names = await spool.groupNames();
  return Promise.all(
    names.map(async (name): Promise<Route> => {
      const group = spool.group(name);
      return { group, accepts: acceptor(await readPatterns(group)) };
    }),
  );
}
