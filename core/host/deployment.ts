import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { PluginCatalog, type CatalogEntry } from './plugin-catalog.js';
import { resolveSecrets } from './secrets.js';
import { addConfigKeywords, secretReferenceContext, secretReferencePointers, valueAt } from './config-keywords.js';
import { CREDENTIALS_KEY_SETTING, parseCredentialKey } from './credentials.js';
import type { PluginKind } from './plugin-api.js';
import { inQuietHours, parseClockTime, type ReminderSettings } from '../pipeline/reminder-scheduler.js';

/** The file a host reads when `--config` is not given. */
export const DEFAULT_CONFIG_FILE = 'approvals.config.json';

export { isAcceptableUrl } from './config-keywords.js';

export interface InstanceSpec {
  readonly id: string;
  readonly plugin: string;
  readonly config: Record<string, unknown>;
}

export interface SourceSpec extends InstanceSpec {
  readonly pollIntervalSeconds: number;
  readonly sweepIntervalSeconds: number;
}

/** A validated deployment with secrets resolved and each instance matched to its plugin. */
export interface Deployment {
  readonly file: string | undefined;
  readonly baseDir: string;
  readonly retentionDays: number;
  readonly queue: { readonly adapter: string; readonly config: Record<string, unknown>; readonly plugin: CatalogEntry };
  readonly sources: readonly (SourceSpec & { readonly entry: CatalogEntry })[];
  readonly notifiers: readonly (InstanceSpec & { readonly entry: CatalogEntry })[];
  readonly delivery: { readonly maxAttempts: number; readonly leaseSeconds: number; readonly keepDays: number };
  readonly http: HttpSettings | undefined;
  /** Absent when the file has no `reminders` block: then nobody is reminded. */
  readonly reminders: ReminderSettings | undefined;
  /** The key credentials are encrypted with (`credentials.key`); absent: the queue adapter's default, if it has one. */
  readonly credentials: { readonly key?: Buffer | undefined };
  /**
   * Loaded for a command that only reads the queue: source configs keep their secret references
   * unresolved (and the credential key is not read), so the host composes no source instance.
   */
  readonly readOnly?: true | undefined;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
}

/** `http`: the public listener, and the admin listener for `/metrics` and `/readyz` when `admin` is set. */
export interface HttpSettings extends Listener {
  readonly admin?: Listener;
  /** HTTPS on the public listener; paths resolved against the deployment's directory. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile?: string };
}

/** Where the admin listener binds when `http.admin` leaves a field out: loopback, Prometheus exporters' usual port. */
export const DEFAULT_ADMIN_LISTENER: Listener = { host: '127.0.0.1', port: 9464 };

/** Bad configuration: one `<json path>: <problem>` line per problem. Nothing starts. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

const ID = '^[a-z][a-z0-9-]{0,62}$';
const instance = (extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['id', 'plugin'],
  properties: {
    id: { type: 'string', pattern: ID },
    plugin: { type: 'string', minLength: 1 },
    config: { type: 'object', default: {} },
    ...extra,
  },
});

/** A local time of day, `HH:MM`. */
const clockTime = (fallback: string) => ({ type: 'string', clockTime: true, default: fallback });

/** The deployment file's JSON Schema; every numeric setting has a minimum and a maximum. */
export const deploymentSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    plugins: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    retentionDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
    queue: {
      type: 'object',
      additionalProperties: false,
      required: ['adapter'],
      properties: { adapter: { type: 'string', minLength: 1 }, config: { type: 'object', default: {} } },
      default: { adapter: 'sqlite' },
    },
    sources: {
      type: 'array',
      items: instance({
        // At most a day: a longer wait is no longer "detection", and a timer cannot wait past 24.8 days.
        pollIntervalSeconds: { type: 'number', minimum: 1, maximum: 86_400, default: 60 },
        sweepIntervalSeconds: { type: 'number', minimum: 0, maximum: 604_800, default: 900 },
      }),
      default: [],
    },
    notifiers: { type: 'array', items: instance(), default: [{ id: 'console', plugin: 'console' }] },
    delivery: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxAttempts: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
        leaseSeconds: { type: 'number', minimum: 1, maximum: 86_400, default: 60 },
        // Settled outbox entries (and receipts of final cards) older than this are deleted. At
        // least 2: a digest's idempotency key names the approver's local date.
        keepDays: { type: 'integer', minimum: 2, maximum: 3650, default: 30 },
      },
      default: {},
    },
    http: {
      type: 'object',
      additionalProperties: false,
      properties: {
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        host: { type: 'string', default: '127.0.0.1' },
        // Present: /metrics and /readyz move here, off the listener Slack, Teams and the inbox need.
        admin: {
          type: 'object',
          additionalProperties: false,
          properties: {
            port: { type: 'integer', minimum: 0, maximum: 65535, default: DEFAULT_ADMIN_LISTENER.port },
            host: { type: 'string', default: DEFAULT_ADMIN_LISTENER.host },
          },
        },
        // HTTPS on the public listener. clientCaFile: client certificates from that CA are asked
        // for but not required (the Concur event webhook checks Concur's; chat callbacks send none).
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['certFile', 'keyFile'],
          properties: {
            certFile: { type: 'string', minLength: 1 },
            keyFile: { type: 'string', minLength: 1 },
            clientCaFile: { type: 'string', minLength: 1 },
          },
        },
      },
    },
    // Secrets at rest (rotating refresh tokens): `key` is a reference to 32 random bytes, base64 or hex.
    credentials: {
      type: 'object',
      additionalProperties: false,
      properties: { key: { secret: true } },
      default: {},
    },
    // Absent: no reminders. Present (even `{}`): every setting has the default shown.
    reminders: {
      type: 'object',
      additionalProperties: false,
      properties: {
        afterHours: { type: 'number', exclusiveMinimum: 0, maximum: 8_760, default: 24 },
        maxReminders: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
        // In the approver's own time zone; start after end spans midnight; start equal to end: none.
        quietHours: {
          type: 'object',
          additionalProperties: false,
          properties: { start: clockTime('19:00'), end: clockTime('08:00') },
          default: {},
        },
        defaultTimeZone: { type: 'string', timeZone: true, default: 'UTC' },
        // Present: one digest per approver per local day instead of single reminders.
        digest: { type: 'object', additionalProperties: false, properties: { at: clockTime('09:00') } },
      },
    },
  },
} as const;

function newAjv(): Ajv {
  // passContext: the `secret` keyword learns from the context where the file had references.
  return addConfigKeywords(new Ajv({ allErrors: true, useDefaults: true, strict: false, passContext: true }));
}

/** `/sources/0/config/baseUrl` → `sources[0].config.baseUrl`. */
export function jsonPath(prefix: string, pointer: string): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out || '(root)';
}

function describe(prefix: string, errors: readonly ErrorObject[] | null | undefined): string[] {
  // An if/then failure is reported by the `then` branch's own error; the `if` line says nothing more.
  return (errors ?? [])
    .filter((e) => e.keyword !== 'if')
    .map((e) => {
      if (e.keyword === 'required') return `${jsonPath(prefix, `${e.instancePath}/${e.params.missingProperty as string}`)}: is required`;
      if (e.keyword === 'additionalProperties') {
        return `${jsonPath(prefix, `${e.instancePath}/${e.params.additionalProperty as string}`)}: is not a known setting`;
      }
      if (e.keyword === 'enum')
        return `${jsonPath(prefix, e.instancePath)}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      if (e.keyword === 'format' && (e.params.format === 'uri' || e.params.format === 'url')) return `${jsonPath(prefix, e.instancePath)}: must be a URL`;
      return `${jsonPath(prefix, e.instancePath)}: ${e.message ?? 'is invalid'}`;
    });
}

/**
 * {@link describe} for an instance config validated with its secrets resolved: nothing more is said
 * of a reference that did not resolve (its own problem is listed), and a limit a secret misses is
 * said of "the secret", with its length but never its value.
 */
function describeConfig(prefix: string, errors: readonly ErrorObject[] | null | undefined, references: readonly string[], resolved: unknown): string[] {
  const unresolved = references.filter((p) => valueAt(resolved, p) === undefined);
  const kept = (errors ?? []).filter((e) => {
    const at = e.keyword === 'required' ? `${e.instancePath}/${e.params.missingProperty as string}` : e.instancePath;
    return !unresolved.some((p) => at === p || at.startsWith(`${p}/`));
  });
  const secretErrors = kept.filter((e) => references.includes(e.instancePath) && e.keyword !== 'secret');
  return [
    ...describe(
      prefix,
      kept.filter((e) => !secretErrors.includes(e)),
    ),
    ...secretErrors.map((e) => {
      const value = valueAt(resolved, e.instancePath);
      if (e.keyword === 'minLength' && typeof value === 'string') {
        return `${jsonPath(prefix, e.instancePath)}: the secret must be at least ${e.params.limit as number} characters long (it has ${value.length})`;
      }
      return `${jsonPath(prefix, e.instancePath)}: the secret ${e.message ?? 'is invalid'}`;
    }),
  ];
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const pos = /position (\d+)/.exec(message);
    let where = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
    }
    throw new ConfigError([`${file}: malformed JSON${where}: ${message}`]);
  }
}

/**
 * Reads and validates a deployment: the file against the deployment schema, every plugin name
 * against the catalog, every instance config against its plugin's schema, every secret
 * reference against the environment. Throws a {@link ConfigError} listing every problem.
 */
export function loadDeployment(
  file: string | undefined,
  options: { env?: NodeJS.ProcessEnv; raw?: unknown; catalog?: PluginCatalog; baseDir?: string; readOnly?: boolean } = {},
): Deployment {
  const env = options.env ?? process.env;
  let raw: unknown = options.raw;
  // `baseDir`: where a raw deployment's relative paths resolve (an embedding application's choice).
  const baseDir = options.baseDir !== undefined ? resolve(options.baseDir) : file ? dirname(resolve(file)) : process.cwd();
  if (raw === undefined) {
    if (!file) throw new Error('loadDeployment needs a file or a raw deployment');
    if (!existsSync(file)) throw new ConfigError([`${file}: no such file`]);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ConfigError([`${file}: cannot read the deployment file (${code === 'EISDIR' ? 'it is a directory' : (code ?? 'error')})`]);
    }
    raw = parseJson(text, file);
  }
  const ajv = newAjv();
  const validate = ajv.compile(deploymentSchema);
  if (!validate(raw)) throw new ConfigError(describe('', validate.errors));
  const d = raw as {
    plugins: string[];
    retentionDays: number;
    queue: { adapter: string; config: Record<string, unknown> };
    sources: SourceSpec[];
    notifiers: InstanceSpec[];
    delivery: { maxAttempts: number; leaseSeconds: number; keepDays: number };
    http?: HttpSettings;
    reminders?: ReminderSettings;
    credentials: { key?: unknown };
  };

  const problems: string[] = [];
  const catalog = options.catalog ?? PluginCatalog.builtIn(problems);
  d.plugins.forEach((loc, i) => catalog.addLocation(loc, baseDir, `plugins[${i}]`, problems));

  const check = (kind: PluginKind, pluginId: string, config: Record<string, unknown>, path: string, what: string, resolve = true) => {
    const entry = catalog.get(pluginId, kind);
    if (!entry) {
      const known = catalog.ids(kind);
      problems.push(`${path}: unknown ${what} "${pluginId}" (known: ${known.join(', ') || 'none'})`);
      return undefined;
    }
    // A read-only command builds no instance of this plugin: its secrets stay unresolved (and may be unset).
    if (!resolve) return { entry, config };
    // References are resolved before the config is checked, so a secret field's declared type and
    // limits apply to the secret itself (`"type": "string"` accepts {"env": …}); the `secret`
    // keyword learns from the context which fields were references.
    const configPath = `${path.replace(/\.(plugin|adapter)$/, '')}.config`;
    const references = secretReferencePointers(config);
    const resolved = resolveSecrets(config, configPath, env, baseDir, problems);
    const validateConfig = ajv.compile(entry.manifest.configSchema);
    if (!validateConfig.call(secretReferenceContext(references), resolved)) {
      problems.push(...describeConfig(configPath, validateConfig.errors, references, resolved));
      return undefined;
    }
    return { entry, config: resolved as Record<string, unknown> };
  };

  const queue = check('queue', d.queue.adapter, d.queue.config, 'queue.adapter', 'queue adapter');
  const duplicates = (list: InstanceSpec[], what: string, path: string) => {
    const seen = new Set<string>();
    list.forEach((s, i) => {
      if (seen.has(s.id)) problems.push(`${path}[${i}].id: duplicate ${what} id "${s.id}"`);
      seen.add(s.id);
    });
  };
  duplicates(d.sources, 'source', 'sources');
  duplicates(d.notifiers, 'notifier', 'notifiers');
  const sources = d.sources.map((s, i) => ({ s, c: check('source', s.plugin, s.config, `sources[${i}].plugin`, 'source plugin', !options.readOnly) }));
  let credentialKey: Buffer | undefined;
  if (d.credentials.key !== undefined && !options.readOnly) {
    const text = resolveSecrets(d.credentials.key, CREDENTIALS_KEY_SETTING, env, baseDir, problems);
    if (typeof text === 'string') {
      const parsed = parseCredentialKey(text);
      if ('problem' in parsed) problems.push(`${CREDENTIALS_KEY_SETTING}: ${parsed.problem}`);
      else credentialKey = parsed.key;
    }
  }
  const notifiers = d.notifiers.map((n, i) => ({ n, c: check('notifier', n.plugin, n.config, `notifiers[${i}].plugin`, 'notifier plugin') }));
  // Plugins that serve fixed HTTP paths: a second instance would collide with the first on them.
  const routeOwners = new Map<string, number>();
  notifiers.forEach(({ n, c }, i) => {
    if (!c) return;
    const path = typeof c.config.callbackPath === 'string' ? c.config.callbackPath : undefined;
    const route = c.entry.manifest.singleInstance ? `${n.plugin}` : path !== undefined ? `${n.plugin} ${path}` : undefined;
    if (route === undefined) return;
    const first = routeOwners.get(route);
    if (first === undefined) routeOwners.set(route, i);
    else if (c.entry.manifest.singleInstance)
      problems.push(`notifiers[${i}].plugin: only one "${n.plugin}" notifier per deployment (it would collide with notifiers[${first}] on its HTTP paths)`);
    else problems.push(`notifiers[${i}].config.callbackPath: "${path}" is already served by notifiers[${first}]`);
  });
  let http = d.http;
  if (http?.tls) {
    const tls = Object.fromEntries(Object.entries(http.tls).map(([k, file]) => [k, resolve(baseDir, file)])) as NonNullable<HttpSettings['tls']>;
    for (const [k, file] of Object.entries(tls)) if (!existsSync(file)) problems.push(`http.tls.${k}: no such file ${file}`);
    http = { ...http, tls };
  }
  const digestAt = d.reminders?.digest && parseClockTime(d.reminders.digest.at);
  if (d.reminders && digestAt !== undefined && inQuietHours(digestAt, d.reminders.quietHours)) {
    const { start, end } = d.reminders.quietHours;
    problems.push(`reminders.digest.at: must be outside quietHours (${start} to ${end}), or no digest would ever go out on time`);
  }
  if (problems.length > 0 || !queue) throw new ConfigError(problems);

  return {
    file,
    baseDir,
    retentionDays: d.retentionDays,
    queue: { adapter: d.queue.adapter, config: queue.config, plugin: queue.entry },
    sources: sources.map(({ s, c }) => ({ ...s, config: c!.config, entry: c!.entry })),
    notifiers: notifiers.map(({ n, c }) => ({ ...n, config: c!.config, entry: c!.entry })),
    delivery: d.delivery,
    http,
    reminders: d.reminders,
    credentials: { key: credentialKey },
    ...(options.readOnly ? { readOnly: true as const } : {}),
  };
}
