import type { ContainerModule, ServiceIdentifier } from '../di.js';

/** The kinds of plugin a host loads; a deployment names one queue, any number of the others. */
export type PluginKind = 'source' | 'queue' | 'notifier';

/** The host plugin API version this core implements; a manifest with another is refused. */
export const PLUGIN_API_VERSION = 1;

/** The data-only `plugin.json` every plugin and adapter ships. Reading it runs no code. */
export interface PluginManifest {
  readonly id: string;
  readonly version: string;
  readonly apiVersion: number;
  readonly kind: PluginKind;
  /** Module path relative to the manifest; its default export is a {@link PluginModuleFactory}. */
  readonly entry: string;
  readonly description?: string;
  /** JSON Schema (draft 2020-12 subset ajv supports) of one instance's `config`. */
  readonly configSchema: Record<string, unknown>;
}

/** What the host hands a plugin's module factory for one configured instance. */
export interface PluginContext<C = Record<string, unknown>> {
  /** Instance id from the deployment file (`sources[].id`, `notifiers[].id`), or the plugin id for the queue. */
  readonly instanceId: string;
  /** The instance's config, validated against the manifest's schema, secret references resolved. */
  readonly config: C;
  /** Directory the deployment file lives in; relative paths in config resolve against it. */
  readonly baseDir: string;
}

/**
 * A plugin entry's default export. The returned module binds the plugin's classes in a child
 * container of its own (one per instance), and binds the contract it contributes:
 * `ApprovalSource` (and optionally `IdentityDirectory`) for a source, `ApprovalQueue` for a
 * queue, `Notifier` for a notifier.
 */
export type PluginModuleFactory<C = Record<string, unknown>> = (context: PluginContext<C>) => ContainerModule;

/** Token under which a plugin's child container finds its {@link PluginContext}. */
export const PluginContext: ServiceIdentifier<PluginContext> = Symbol.for('approvals.core.PluginContext');
