// The build's last step, after `tsc`:
// - copies every data-only plugin.json next to its compiled module, so the host finds
//   built-in plugins in dist/ the same way it finds an external plugin in its package;
// - marks every `bin` of package.json executable. `tsc` writes files without the exec bit and the
//   build starts with `rm -rf dist`, so without this a bin npm has already linked
//   (node_modules/.bin/approvals-hub → dist/core/host/cli.js) stops working after every rebuild.
import { chmodSync, cpSync, readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

for (const root of ['plugins', 'adapters']) {
  if (!existsSync(root)) continue;
  for (const dir of readdirSync(root)) {
    const manifest = join(root, dir, 'plugin.json');
    if (existsSync(manifest)) cpSync(manifest, join('dist', root, dir, 'plugin.json'));
  }
}

const { bin } = JSON.parse(readFileSync('package.json', 'utf8'));
for (const file of typeof bin === 'string' ? [bin] : Object.values(bin ?? {})) {
  if (!existsSync(file)) throw new Error(`package.json bin ${file} was not built`);
  // Add x wherever r is set (0644 → 0755), as npm does when it links a bin.
  const mode = statSync(file).mode & 0o777;
  chmodSync(file, mode | ((mode & 0o444) >> 2));
}
