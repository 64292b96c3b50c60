/**
 * Installs the peers (bench/peers/package-lock.json) with `npm ci` when bench/peers/node_modules
 * is missing or was installed from another package.json or lockfile. better-sqlite3 and fs-ext
 * compile from source here (about 2 minutes), so an unchanged install is kept between runs.
 * package.json's allowScripts lets those two run their install scripts (npm 11 asks for it)
 * and skips the builds of qlobber-fsq's other optional modules, which the bench does not use.
 * `node bench/peers/install.mjs --force` reinstalls.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const stamp = new URL('./node_modules/.spoolq-bench-lock-sha256', import.meta.url);
const lock = createHash('sha256')
  .update(readFileSync(new URL('./package.json', import.meta.url)))
  .update(readFileSync(new URL('./package-lock.json', import.meta.url)))
  .digest('hex');

let installed = '';
try {
  installed = readFileSync(stamp, 'utf8').trim();
} catch {}

if (installed === lock && !process.argv.includes('--force')) {
  console.log('bench/peers: dependencies up to date (node bench/peers/install.mjs --force reinstalls)');
} else {
  console.log('bench/peers: npm ci (better-sqlite3 and fs-ext may compile from source: a few minutes)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: here, stdio: 'inherit' });
  writeFileSync(stamp, `${lock}\n`);
}
