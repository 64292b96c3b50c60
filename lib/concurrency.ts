/**
 * Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first error after
 * all settle. That wait is a contract: the publisher reuses a round's buffers once its writes
 * have returned or thrown (publisher.ts #run), so no call may still be running then.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  if (items.length === 1) return fn(items[0] as T, 0); // the common case (one file), without the workers
  let next = 0;
  let firstError: unknown = null;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      try {
        await fn(items[index] as T, index);
      } catch (error) {
        firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError !== null) throw firstError;
}
