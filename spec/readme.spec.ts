import { readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { cleanup, runFixture, tempDir } from './helpers.js';

afterEach(cleanup);

const README = fileURLToPath(new URL('../README.md', import.meta.url));

it('every js example of the README runs and exits on its own', async () => {
  const blocks = [...(await readFile(README, 'utf8')).matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  expect(blocks.length).toBeGreaterThan(0);
  for (const [i, block] of blocks.entries()) {
    // Inside the package, so `import 'spoolq'` resolves to this package (self-reference).
    const file = fileURLToPath(new URL(`./fixtures/.readme-example-${i}.mjs`, import.meta.url));
    const spool = await tempDir();
    await writeFile(file, block.replaceAll('/tmp/spoolq-readme', `${spool}/spool`));
    try {
      const child = runFixture(`.readme-example-${i}.mjs`, []);
      const code = await Promise.race([child.exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      expect(code, `README example ${i}: ${child.stderr()}`).toBe(0);
      expect(child.stderr()).toBe('');
    } finally {
      await rm(file, { force: true });
    }
  }
});
