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
  /**
   * JSON Schema (draft 2020-12 subset ajv supports) of one instance's `config`, checked in ajv's
   * strict mode: an unknown keyword (a typo such as `requried`) makes the host refuse the plugin.
   * Besides the standard keywords it may use the host's own; see {@link ConfigSchemaProperty}.
   */
  readonly configSchema: ConfigSchema;
  /** Optional module, relative to the manifest, whose default export is a {@link CommandContribution}. */
  readonly commands?: string;
  /** At most one instance per deployment, e.g. a notifier that serves fixed HTTP paths (`/inbox`). */
  readonly singleInstance?: boolean;
}

/** JSON Schema's type names. */
export type ConfigSchemaType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/**
 * One node of a manifest's `configSchema`: standard JSON Schema keywords, plus the host's.
 * Write a manifest's schema against this type (e.g. in a test: `const schema: ConfigSchema =
 * JSON.parse(…)`) to catch a misspelt keyword before the host refuses the plugin for it.
 */
export type ConfigSchemaProperty = {
  readonly $schema?: string;
  readonly $id?: string;
  readonly $ref?: string;
  readonly $defs?: Readonly<Record<string, ConfigSchemaProperty>>;
  readonly $comment?: string;
  readonly title?: string;
  readonly description?: string;
  readonly examples?: readonly unknown[];
  readonly deprecated?: boolean;
  readonly type?: ConfigSchemaType | readonly ConfigSchemaType[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  /** Filled in when the deployment file leaves the field out. */
  readonly default?: unknown;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  /** A format of ajv-formats: `uri`, `email`, `uuid`, `date-time`, `hostname`, … */
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly multipleOf?: number;
  readonly properties?: Readonly<Record<string, ConfigSchemaProperty>>;
  readonly patternProperties?: Readonly<Record<string, ConfigSchemaProperty>>;
  readonly additionalProperties?: boolean | ConfigSchemaProperty;
  readonly propertyNames?: ConfigSchemaProperty;
  readonly required?: readonly string[];
  /** Draft-07's form (the host's validator is draft-07; it refuses 2019-09's `dependentRequired`). */
  readonly dependencies?: Readonly<Record<string, readonly string[] | ConfigSchemaProperty>>;
  readonly minProperties?: number;
  readonly maxProperties?: number;
  readonly items?: boolean | ConfigSchemaProperty;
  readonly prefixItems?: readonly ConfigSchemaProperty[];
  readonly contains?: ConfigSchemaProperty;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
  readonly allOf?: readonly ConfigSchemaProperty[];
  readonly anyOf?: readonly ConfigSchemaProperty[];
  readonly oneOf?: readonly ConfigSchemaProperty[];
  readonly not?: ConfigSchemaProperty;
  readonly if?: ConfigSchemaProperty;
  readonly then?: ConfigSchemaProperty;
  readonly else?: ConfigSchemaProperty;
  /**
   * `true`: the deployment file must give this field as a secret reference, `{"env": "NAME"}` or
   * `{"file": "path"}` (relative to the deployment file), never a literal. The host resolves the
   * reference, keeps the value out of every log line, and checks the field's other keywords
   * (`type`, `minLength`, `pattern`) against the secret itself; the plugin receives the string.
   */
  readonly secret?: boolean;
  /**
   * `true` (on a string): an `https:` URL, or `http:` only on 127.0.0.1, localhost or [::1] (a
   * sandbox, a local fake). A URL carrying `user:password@` is refused; credentials belong in a
   * `secret` field. Error messages never repeat the value.
   */
  readonly httpsUrl?: boolean;
  /** `true` (on a string): a local time of day, `HH:MM` on a 24-hour clock. */
  readonly clockTime?: boolean;
  /** `true` (on a string): an IANA time zone name such as `Europe/Berlin`. */
  readonly timeZone?: boolean;
};

/** A manifest's `configSchema`: the schema of one instance's `config` object. */
export type ConfigSchema = ConfigSchemaProperty;

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
