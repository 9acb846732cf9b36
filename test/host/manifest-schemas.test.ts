import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// A plugin that writes its configSchema in TypeScript (`config-schema.ts`, from which its config
// type is derived) must ship the same schema in its data-only plugin.json, the file the host reads.
// `npm run gen:manifests` rewrites plugin.json from the TypeScript; these tests catch a forgotten run.
describe('plugin manifests generated from config-schema.ts', () => {
  const plugins = ['plugins', 'adapters'].flatMap((root) =>
    readdirSync(root)
      .filter((name) => existsSync(join(root, name, 'plugin.json')) && existsSync(join(root, name, 'config-schema.ts')))
      .map((name) => join(root, name)),
  );

  async function schemaOf(dir: string): Promise<unknown> {
    // This file runs from dist/test/host; the compiled schema module sits at dist/<dir>.
    const module = (await import(new URL(`../../${dir}/config-schema.js`, import.meta.url).href)) as { configSchema?: unknown };
    return module.configSchema;
  }

  function manifestSchema(file: string): unknown {
    return (JSON.parse(readFileSync(file, 'utf8')) as { configSchema?: unknown }).configSchema;
  }

  it('finds the plugins that write their schema in TypeScript (the checks below are not vacuous)', () => {
    expect(plugins).to.include.members(['plugins/concur', 'adapters/chat-teams', 'adapters/queue-postgres']);
  });

  it('has every built-in plugin write its schema in TypeScript, so each config type is derived from it', () => {
    const withoutSchema = ['plugins', 'adapters'].flatMap((root) =>
      readdirSync(root)
        .filter((name) => existsSync(join(root, name, 'plugin.json')) && !existsSync(join(root, name, 'config-schema.ts')))
        .map((name) => join(root, name)),
    );
    expect(withoutSchema).to.deep.equal([]);
  });

  it('commits a plugin.json whose configSchema equals the one in config-schema.ts', async () => {
    for (const dir of plugins) {
      const schema = await schemaOf(dir);
      expect(schema, `${dir}/config-schema.js exports no configSchema`).to.be.an('object');
      expect(manifestSchema(join(dir, 'plugin.json')), `${dir}/plugin.json differs from ${dir}/config-schema.ts: run npm run gen:manifests`).to.deep.equal(
        schema,
      );
    }
  });

  it('builds into dist a plugin.json whose configSchema is the one in config-schema.ts', async () => {
    for (const dir of plugins) {
      expect(manifestSchema(join('dist', dir, 'plugin.json')), `dist/${dir}/plugin.json`).to.deep.equal(await schemaOf(dir));
    }
  });
});
