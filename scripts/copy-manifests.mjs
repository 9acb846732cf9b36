// Copies every data-only plugin.json next to its compiled module, so the host finds
// built-in plugins in dist/ the same way it finds an external plugin in its package.
import { cpSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

for (const root of ['plugins', 'adapters']) {
  if (!existsSync(root)) continue;
  for (const dir of readdirSync(root)) {
    const manifest = join(root, dir, 'plugin.json');
    if (existsSync(manifest)) cpSync(manifest, join('dist', root, dir, 'plugin.json'));
  }
}
