// The build's last step, after `tsc`:
// - copies every data-only plugin.json next to its compiled module, so the host finds
//   built-in plugins in dist/ the same way it finds an external plugin in its package. Where a
//   plugin writes its schema in TypeScript (`config-schema.ts` exporting `configSchema`, the one
//   source of its config type), the copy's `configSchema` is that schema, so what runs is always
//   the source of truth. `--write-sources` (npm run gen:manifests) also rewrites the committed
//   plugin.json from it; test/host/manifest-schemas.test.ts fails when the two differ.
// - marks every `bin` of package.json executable. `tsc` writes files without the exec bit and the
//   build starts with `rm -rf dist`, so without this a bin npm has already linked
//   (node_modules/.bin/approvals-hub → dist/core/host/cli.js) stops working after every rebuild.
import { chmodSync, cpSync, readdirSync, readFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const writeSources = process.argv.includes('--write-sources');

for (const root of ['plugins', 'adapters']) {
  if (!existsSync(root)) continue;
  for (const dir of readdirSync(root)) {
    const manifest = join(root, dir, 'plugin.json');
    if (!existsSync(manifest)) continue;
    const target = join('dist', root, dir, 'plugin.json');
    const schemaModule = resolve('dist', root, dir, 'config-schema.js');
    if (!existsSync(schemaModule)) {
      cpSync(manifest, target);
      continue;
    }
    const { configSchema } = await import(pathToFileURL(schemaModule).href);
    if (typeof configSchema !== 'object' || configSchema === null) throw new Error(`${schemaModule} does not export a configSchema object`);
    const generated = `${JSON.stringify({ ...JSON.parse(readFileSync(manifest, 'utf8')), configSchema }, null, 2)}\n`;
    writeFileSync(target, generated);
    if (writeSources && readFileSync(manifest, 'utf8') !== generated) {
      writeFileSync(manifest, generated);
      console.log(`wrote ${manifest}`);
    }
  }
}

const { bin } = JSON.parse(readFileSync('package.json', 'utf8'));
for (const file of typeof bin === 'string' ? [bin] : Object.values(bin ?? {})) {
  if (!existsSync(file)) throw new Error(`package.json bin ${file} was not built`);
  // Add x wherever r is set (0644 → 0755), as npm does when it links a bin.
  const mode = statSync(file).mode & 0o777;
  chmodSync(file, mode | ((mode & 0o444) >> 2));
}
