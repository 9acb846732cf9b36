import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import { PLUGIN_API_VERSION, type CommandContribution, type PluginKind, type PluginManifest, type PluginModuleFactory } from './plugin-api.js';

/** A manifest with where it was found. */
export interface CatalogEntry {
  readonly manifest: PluginManifest;
  readonly dir: string;
}

const manifestSchema = {
  type: 'object',
  required: ['id', 'version', 'apiVersion', 'kind', 'entry', 'configSchema'],
  properties: {
    id: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
    version: { type: 'string', minLength: 1 },
    apiVersion: { const: PLUGIN_API_VERSION },
    kind: { enum: ['source', 'queue', 'notifier'] },
    entry: { type: 'string', minLength: 1 },
    description: { type: 'string' },
    configSchema: { type: 'object' },
    commands: { type: 'string', minLength: 1 },
    singleInstance: { type: 'boolean' },
  },
} as const;

const validateManifest = new Ajv({ allErrors: true, strict: false }).compile(manifestSchema);

/** The dist/ folder this module was compiled into; built-in plugins live under it. */
const DIST_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Every plugin manifest the host can load: the built-in ones under `plugins/` and `adapters/`,
 * plus the locations a deployment names (a folder holding `plugin.json`, or an npm package with
 * `plugin.json` at its root). Reading the catalog runs no plugin code.
 */
export class PluginCatalog {
  private readonly entries = new Map<string, CatalogEntry>();

  private constructor() {}

  static builtIn(problems: string[] = []): PluginCatalog {
    const catalog = new PluginCatalog();
    for (const root of ['plugins', 'adapters']) {
      const base = join(DIST_ROOT, root);
      if (!existsSync(base)) continue;
      for (const name of readdirSync(base).sort()) {
        if (existsSync(join(base, name, 'plugin.json'))) catalog.addDir(join(base, name), `built-in ${root}/${name}`, problems);
      }
    }
    return catalog;
  }

  /** Adds a plugin from a path (relative to `baseDir`) or a package name; problems name `path`. */
  addLocation(location: string, baseDir: string, path: string, problems: string[]): void {
    let dir: string;
    if (location.startsWith('.') || isAbsolute(location)) dir = resolve(baseDir, location);
    else {
      try {
        dir = dirname(createRequire(join(baseDir, 'noop.js')).resolve(`${location}/package.json`));
      } catch {
        problems.push(`${path}: cannot find plugin package "${location}" from ${baseDir}`);
        return;
      }
    }
    if (!existsSync(join(dir, 'plugin.json'))) {
      problems.push(`${path}: no plugin.json in ${location}`);
      return;
    }
    this.addDir(dir, path, problems);
  }

  private addDir(dir: string, path: string, problems: string[]): void {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(join(dir, 'plugin.json'), 'utf8'));
    } catch (error) {
      problems.push(`${path}: plugin.json is not valid JSON (${(error as Error).message})`);
      return;
    }
    if (!validateManifest(manifest)) {
      for (const e of validateManifest.errors ?? []) problems.push(`${path}: plugin.json${e.instancePath.replaceAll('/', '.')} ${e.message}`);
      return;
    }
    const m = manifest as unknown as PluginManifest;
    const known = this.entries.get(m.id);
    if (known && known.dir !== dir) {
      problems.push(`${path}: plugin id "${m.id}" is already provided by ${known.dir}`);
      return;
    }
    this.entries.set(m.id, { manifest: m, dir });
  }

  /** Every entry, in id order. */
  all(): CatalogEntry[] {
    return [...this.entries.values()].sort((a, b) => a.manifest.id.localeCompare(b.manifest.id));
  }

  get(id: string, kind: PluginKind): CatalogEntry | undefined {
    const entry = this.entries.get(id);
    return entry?.manifest.kind === kind ? entry : undefined;
  }

  ids(kind: PluginKind): string[] {
    return [...this.entries.values()].filter((e) => e.manifest.kind === kind).map((e) => e.manifest.id);
  }

  /** Imports a plugin's command contribution, if its manifest names one. */
  static async loadCommands(entry: CatalogEntry): Promise<CommandContribution | undefined> {
    if (!entry.manifest.commands) return undefined;
    const mod = (await import(pathToFileURL(resolve(entry.dir, entry.manifest.commands)).href)) as { default?: unknown };
    if (typeof mod.default !== 'function') throw new Error(`plugin "${entry.manifest.id}": ${entry.manifest.commands} has no default export function`);
    return mod.default as CommandContribution;
  }

  /** Imports a plugin's entry module; its default export must be a module factory. */
  static async load(entry: CatalogEntry): Promise<PluginModuleFactory> {
    const url = pathToFileURL(resolve(entry.dir, entry.manifest.entry)).href;
    const mod = (await import(url)) as { default?: unknown };
    if (typeof mod.default !== 'function') {
      throw new Error(`plugin "${entry.manifest.id}": ${entry.manifest.entry} has no default export function (expected a PluginModuleFactory)`);
    }
    return mod.default as PluginModuleFactory;
  }
}
