import type { BackoffOptions } from './options.js';

/**
 * The retry delay after the `attempts`-th failed delivery: `baseMs × 2^(attempts−1)` capped at
 * `maxMs`, then "equal jitter": a uniform pick in [delay/2, delay], so that consumers that failed
 * together do not retry in lockstep, while the delay still grows.
 */
export function backoffDelay(attempts: number, backoff: Required<BackoffOptions>, random: () => number = Math.random): number {
  const capped = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(capped / 2 + (random() * capped) / 2);
}
