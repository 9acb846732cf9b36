import type { FromSchema } from 'json-schema-to-ts';
import type { configSchema } from './config-schema.js';

/**
 * One ServiceNow source instance's config, as validated against plugin.json (secrets resolved),
 * derived from {@link configSchema} so the two cannot drift. Fields with a `default` are required:
 * the host's validator fills them in. The schema's `if`/`then` rules (instance and auth unless
 * `sandbox`) are left out of the type, so those stay optional here.
 */
export type ServiceNowSourceConfig = DeepReadonly<FromSchema<typeof configSchema>>;

/** The `auth` setting, one of its two forms. */
export type ServiceNowAuthConfig = NonNullable<ServiceNowSourceConfig['auth']>;

type DeepReadonly<T> = T extends readonly (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
