/**
 * strace output, parsed, for the specs that trace a child (durability, faults, fifo): the output
 * of `strace -f -qq [-y] -o FILE`, one call per line, each line prefixed by the pid (padded, hence
 * `\s+` after it).
 */

/** One system call; `start` and `end` are line numbers (a call split by another thread spans lines). */
export interface Call {
  pid: string;
  name: string;
  args: string;
  ret: string;
  start: number;
  end: number;
}

/**
 * Parses `strace -f -y` output. A call interrupted by another thread's line is printed as
 * `name(args <unfinished ...>` and later `<... name resumed>rest) = ret`: both halves are joined,
 * and the call keeps the line numbers of both (start and end), so "A happened before B" is
 * `A.end < B.start`.
 */
export function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, Call>();
  text.split('\n').forEach((line, index) => {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) return;
    const pid = m[1] as string;
    const rest = m[2] as string;
    const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (unfinished) {
      pending.set(pid, { pid, name: unfinished[1] as string, args: unfinished[2] as string, ret: '', start: index, end: -1 });
      return;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$/.exec(rest);
    if (resumed) {
      const call = pending.get(pid);
      pending.delete(pid);
      if (call && call.name === resumed[1]) calls.push({ ...call, args: call.args + resumed[2], ret: resumed[3] as string, end: index });
      return;
    }
    const whole = /^(\w+)\((.*)\)\s+= (.*)$/.exec(rest);
    if (whole) calls.push({ pid, name: whole[1] as string, args: whole[2] as string, ret: whole[3] as string, start: index, end: index });
  });
  return calls.sort((a, b) => a.start - b.start);
}

/** The path behind the first argument when it is a file descriptor (`-y` prints `18</path>`). */
export function fdPath(call: Call): string | undefined {
  return /^-?\d+<([^>]*)>/.exec(call.args)?.[1];
}

/** The quoted string arguments, in order (paths of openat, rename, link, mkdir, unlink). */
export function strings(call: Call): string[] {
  return [...call.args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] as string);
}

/** The call succeeded: it returned a non-negative number. */
export const ok = (call: Call) => /^\d+/.test(call.ret);
