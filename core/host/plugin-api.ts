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
  /** Optional module, relative to the manifest, whose default export is a {@link CommandContribution}. */
  readonly commands?: string;
  /** At most one instance per deployment, e.g. a notifier that serves fixed HTTP paths (`/inbox`). */
  readonly singleInstance?: boolean;
}

/** What the CLI hands a plugin's command contribution. */
export interface CommandApi {
  /** The top-level command `name` (created on first use), e.g. `sandbox` or `inbox`. */
  group(name: string, description: string): import('commander').Command;
  /**
   * Runs `fn` with a host built from the deployment (`--config` or the default), then stops it.
   * `readOnly`: the command only reads the queue (and notifiers); no source instance is composed,
   * so `sources` is empty and the sources' secrets need not be set.
   */
  withHost<T>(configFile: string | undefined, fn: (host: HostHandle) => Promise<T>, options?: { readonly readOnly?: boolean }): Promise<T>;
  /** Writes a line to standard output. */
  out(line: string): void;
}

/** The parts of a running host a command may use. */
export interface HostHandle {
  readonly queue: import('../contracts/approval-queue.js').ApprovalQueue;
  readonly lookup: import('../contracts/approval-lookup.js').ApprovalLookup;
  readonly notifiers: ReadonlyMap<string, import('../contracts/notifier.js').Notifier>;
  readonly sources: ReadonlyMap<string, import('../contracts/approval-source.js').ApprovalSource>;
}

/** A plugin's CLI commands: registered on the program when the CLI starts. Must not start work itself. */
export type CommandContribution = (api: CommandApi) => void;

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
