import type { ConfigSchema } from '../../core/index.js';

/**
 * The PostgreSQL queue's `configSchema`: the one place it is written. Its config type is derived from it
 * (json-schema-to-ts `FromSchema`), and `npm run gen:manifests` writes it into plugin.json, the
 * data-only manifest the host reads; test/host/manifest-schemas.test.ts fails when they differ.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    connectionString: {
      type: 'string',
      description:
        'libpq connection URI, e.g. postgres://approvals@db.internal:5432/approvals. One that holds a password must be a secret reference ({"env": "NAME"} or {"file": "path"}), never a literal.',
      default: 'postgres://postgres@127.0.0.1:5432/test',
      if: {
        type: 'string',
        pattern: '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:[^/?#@]*@|[?&]password=|(^|\\s)password\\s*=',
      },
      then: {
        type: 'string',
        secret: true,
      },
      else: {
        anyOf: [
          {
            type: 'string',
            minLength: 1,
          },
          {
            type: 'string',
            secret: true,
          },
        ],
      },
    },
    schema: {
      type: 'string',
      pattern: '^[a-z_][a-z0-9_]*$',
      maxLength: 63,
      default: 'approvals_hub',
      description: 'Schema holding every table; created, and migrated, at start-up. Hosts that share a queue name the same schema.',
    },
    poolSize: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 10,
      description: 'Connections per host. Each source instance this host polls holds one for its lease.',
    },
  },
} as const satisfies ConfigSchema;
