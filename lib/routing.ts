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
 * Until the mtime has settled (the first SETTLED_MS after a change of the routes, and for good
 * where timestamps are coarse), the markers of the last listing stand in for it. Each change of
 * the routes, once made, lists groups/ and renames every marker it finds, or makes one if it
 * finds none (Spool.routesChanged). A change made after our listing lists groups/ after it too,
 * so each of our markers is then either gone already or renamed by it; with no marker at all,
 * there is nothing to go on and groups/ is listed. So while each marker of our last listing is
 * still there, no change was made since that listing; a change under way (a group renamed in,
 * its marker not yet renamed) has not resolved, and openQueue of a group that exists renames the
 * markers too, as do a rebind and a deletion that find their change already made elsewhere, so a
 * push made after any of them resolves sees it. A stat of each marker instead of a listing: a
 * fresh queue's producer listed groups/ at every push for its first 20 ms, ~400 pushes at
 * 10–15 µs more each (bench/README.md). A process of a version before this one renames only one
 * marker: with two of them, mixing versions can miss a change for up to ROUTES_TTL_MS.
 *
 * A message with a topic goes to every group with a matching pattern; a message without one
 * only to groups bound to '#' (every group opened without `topics` is).
 */
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { MATCH_ALL, readPatterns } from './bindings.js';
import { entry, type GroupPaths, ROUTES_MARK, ROUTES_TTL_MS, type Spool } from './layout.js';
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

/** How much older than a listing the mtime of groups/ must be for a stat to stand in for the next listing. */
const SETTLED_MS = 20;

interface CachedRoutes {
  listing: string;
  readAt: number;
  routes: Route[];
  /** The mtime of groups/ (ns) before that listing. */
  mtimeNs: bigint;
  /** The same, if it was settled by then; else null. */
  settledMtimeNs: bigint | null;
  /** The paths of the route markers in that listing. */
  markers: string[];
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
  if (fresh && !settled && cached.mtimeNs === mtimeNs && markersInPlace(cached.markers)) return cached.routes;
  const settledMtimeNs = settled ? mtimeNs : null;
  const entries = readdirSync(spool.groups).sort();
  const listing = entries.join('/');
  const markers = entries.filter((name) => name.startsWith(ROUTES_MARK)).map((name) => entry(spool.groups, name));
  if (fresh && cached.listing === listing) {
    Object.assign(cached, { mtimeNs, settledMtimeNs, markers });
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
  cache.set(spool.groups, { listing, readAt: now, routes, mtimeNs, settledMtimeNs, markers });
  return routes;
}

/** Whether every marker of a listing is still there (none: a spool whose routes never changed, so no proof). */
function markersInPlace(markers: readonly string[]): boolean {
  return markers.length > 0 && markers.every((path) => lstatSync(path, { throwIfNoEntry: false }) !== undefined);
}
