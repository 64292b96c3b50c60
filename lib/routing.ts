/**
 * Which groups a publish delivers to. Each publish lists groups/, once for all of its messages,
 * so a publish (pushMany included) reaches each group whole or not at all, and a group created
 * or rebound by any process before a push is called gets that push.
 *
 * The bindings themselves (one listing of each group's topics/) are cached per spool: the
 * listing of groups/ holds the group names and a marker that every change of the routes
 * renames once it is done (Spool.routesChanged), so a listing equal to the cached one means
 * the cached bindings are still those on disk. That saves a listing per group per publish. A
 * change whose process died before renaming the marker is seen after ROUTES_TTL_MS at most.
 *
 * The listing of groups/ itself is skipped while the directory's mtime is the one it had when
 * it was last listed, and that mtime was SETTLED_MS older than the listing: every change of the
 * routes changes an entry of groups/ (a group renamed in or out, the marker renamed), which
 * sets its mtime to the time of the change. Timestamps can be coarse (a clock tick, 1–4 ms;
 * Linux 6.13 and later give a fine one to a change that follows a stat, as here), so an mtime
 * older than the listing by more than a tick cannot be the mtime of a later change. Some file
 * systems keep coarser times (ext4 with 128-byte inodes and HFS+: 1 s, FAT: 2 s, exFAT: 10 ms):
 * an mtime that is a whole multiple of 10 ms is taken for one of those, and the listing is made.
 * One stat instead of an open, two reads and a close on every publish.
 *
 * A message with a topic goes to every group with a matching pattern; a message without one
 * only to groups bound to '#' (every group opened without `topics` is).
 */
import { readdirSync, statSync } from 'node:fs';
import { MATCH_ALL, readPatterns } from './bindings.js';
import type { GroupPaths, Spool } from './layout.js';
import { GROUP_NAME } from './options.js';
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

/** How long cached bindings are trusted without a change of groups/ (see above). */
export const ROUTES_TTL_MS = 1_000;

/** How much older than a listing the mtime of groups/ must be for a stat to stand in for the next listing. */
const SETTLED_MS = 20;

interface CachedRoutes {
  listing: string;
  readAt: number;
  routes: Route[];
  /** The mtime of groups/ (ns) before that listing, if it was settled by then; else null. */
  settledMtimeNs: bigint | null;
}

/** By groups/ path; one entry per spool this process publishes to (bounded all the same). */
const cache = new Map<string, CachedRoutes>();
const MAX_CACHED_SPOOLS = 100;

/** The routes of every group that exists now. */
export async function readRoutes(spool: Spool): Promise<Route[]> {
  const now = performance.now(); // monotonic: a clock stepped back must not stretch the TTL
  const cached = cache.get(spool.groups);
  const fresh = cached !== undefined && now - cached.readAt < ROUTES_TTL_MS;
  // Synchronous: a stat, or a listing of a few names, made on every publish (see durable-fs.ts).
  const mtimeNs = statSync(spool.groups, { bigint: true }).mtimeNs;
  if (fresh && cached.settledMtimeNs === mtimeNs) return cached.routes;
  const settled = mtimeNs % 10_000_000n !== 0n && BigInt(Date.now()) * 1_000_000n - mtimeNs > BigInt(SETTLED_MS) * 1_000_000n;
  const settledMtimeNs = settled ? mtimeNs : null;
  const entries = readdirSync(spool.groups).sort();
  const listing = entries.join('/');
  if (fresh && cached.listing === listing) {
    cached.settledMtimeNs = settledMtimeNs;
    return cached.routes;
  }
  const routes = await Promise.all(
    entries
      .filter((name) => GROUP_NAME.test(name))
      .map(async (name): Promise<Route> => {
        const group = spool.group(name);
        return { group, accepts: acceptor(await readPatterns(group)) };
      }),
  );
  if (cache.size >= MAX_CACHED_SPOOLS) cache.clear();
  // Stamped with the time before the topics were read: the TTL counts from what they show.
  cache.set(spool.groups, { listing, readAt: now, routes, settledMtimeNs });
  return routes;
}
