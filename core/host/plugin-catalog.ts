import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import { configSchemaProblem } from './config-keywords.js';
import { PLUGIN_API_VERSION, type CommandContribution, type PluginKind, type PluginManifest, type PluginModuleFactory } from './plugin-api.js';

/** A manifest with where it was found. */
export interface CatalogEntry {
  readonly manifest: PluginManifest;
  readonly dir: string;
  /** Where the deployment named it (`plugins[0]`), or `built-in plugins/concur`. */
  readonly origin?: string;
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
        // Built-in schemas are checked in strict mode by the tests, not on every start (20 ms each).
        if (existsSync(join(base, name, 'plugin.json'))) catalog.addDir(join(base, name), `built-in ${root}/${name}`, problems, false);
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
    this.addDir(dir, path, problems, true);
  }

  private addDir(dir: string, path: string, problems: string[], strict: boolean): void {
    const file = join(dir, 'plugin.json');
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      problems.push(`${path}: ${file} is not valid JSON (${(error as Error).message})`);
      return;
    }
    if (!validateManifest(manifest)) {
      for (const e of validateManifest.errors ?? []) problems.push(`${path}: ${file}${e.instancePath.replaceAll('/', '.')} ${e.message}`);
      return;
    }
    const m = manifest as unknown as PluginManifest;
    // Strict: a misspelt keyword would otherwise be a constraint that checks nothing.
    const schemaProblem = strict ? configSchemaProblem(m.configSchema) : undefined;
    if (schemaProblem) {
      problems.push(`${path}: plugin "${m.id}" (${file}): ${schemaProblem}`);
      return;
    }
    const known = this.entries.get(m.id);
    if (known && known.dir !== dir) {
      problems.push(`${path}: plugin id "${m.id}" is already provided by ${known.dir}`);
      return;
    }
    this.entries.set(m.id, { manifest: m, dir, origin: path });
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

  /** Imports a plugin's command contribution, if its manifest names one; errors name the plugin and the file. */
  static async loadCommands(entry: CatalogEntry): Promise<CommandContribution | undefined> {
    if (!entry.manifest.commands) return undefined;
    return (await importDefault(entry, entry.manifest.commands, 'commands module', 'a CommandContribution')) as CommandContribution;
  }

  /** Imports a plugin's entry module; its default export must be a module factory. Errors name the plugin and the file. */
  static async load(entry: CatalogEntry): Promise<PluginModuleFactory> {
    return (await importDefault(entry, entry.manifest.entry, 'entry', 'a PluginModuleFactory')) as PluginModuleFactory;
  }
}

/** A plugin module's default export, which must be a function; every failure names the plugin and the file. */
async function importDefault(entry: CatalogEntry, relative: string, what: string, expected: string): Promise<unknown> {
  const file = resolve(entry.dir, relative);
  const where = `plugin "${entry.manifest.id}"${entry.origin && !entry.origin.startsWith('built-in') ? ` (${entry.origin})` : ''}: ${what} ${file}`;
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new PluginLoadError(`${where} cannot be loaded (${reason})`);
  }
  if (typeof mod.default !== 'function') throw new PluginLoadError(`${where} has no default export function (expected ${expected})`);
  return mod.default;
}

/** A plugin module that cannot be imported, or whose default export is not a function. */
export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';
}
