import type { FromSchema } from 'json-schema-to-ts';
import type { configSchema } from './config-schema.js';

/**
 * One Concur source instance's config, as validated against plugin.json (secrets resolved),
 * derived from {@link configSchema} so the two cannot drift. Fields with a `default` are
 * required: the host's validator fills them in. The schema's `if`/`then` rules (credentials
 * unless `sandbox`) are left out of the type, so the credentials stay optional here.
 */
export type ConcurSourceConfig = DeepReadonly<FromSchema<typeof configSchema>>;

type DeepReadonly<T> = T extends readonly (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
