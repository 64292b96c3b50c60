/**
 * Recovery at open. Idempotent and lock-free, so several processes may run it at once: every
 * step is an unlink of a name nobody else will use, or a rename that only one process wins.
 *
 *   - tmp/ files of producers that died mid-publish (older than TMP_MAX_AGE_MS) are removed;
 *     younger ones may belong to a live producer that is still linking them into its groups;
 *   - half-made group directories left in tmp/ by a crash are removed;
 *   - expired leases of the group are returned to ready/ (or dead/ after the last attempt).
 *
 * Unparsable names are quarantined by the first scan of ready/, and files with a bad length or
 * CRC when a consumer claims them: a bad file is never delivered and never stops the queue.
 */
import { lstat, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Spool } from './layout.js';
import type { Leases } from './leases.js';

/**
 * A tmp file older than this belongs to a producer that died. A publish normally links its tmp
 * files within milliseconds, but one may wait its turn behind a very large pushMany of the same
 * producer, and a link does not refresh the file's mtime: removing a live producer's file fails
 * its push, while an orphan only costs disk space until then (Maildir waits 36 hours).
 */
export const TMP_MAX_AGE_MS = 60 * 60_000;

export async function recover(spool: Spool, leases: Leases, now = Date.now()): Promise<void> {
  await sweepTmp(spool.tmp, now);
  await leases.reap(now);
}

async function sweepTmp(tmpDir: string, now: number): Promise<void> {
  for (const name of await readdir(tmpDir)) {
    const path = join(tmpDir, name);
    try {
      const info = await lstat(path);
      const old = now - info.mtimeMs > TMP_MAX_AGE_MS;
      if (info.isDirectory()) {
        if (old) await rm(path, { recursive: true, force: true });
      } else if (old) {
        await unlink(path);
      }
    } catch {
      // removed or published by its owner meanwhile
    }
  }
}
