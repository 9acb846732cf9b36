import type { ConfigSchema } from '../../core/index.js';

/**
 * The console notifier's `configSchema`: the one place it is written. Its config type is derived from it
 * (json-schema-to-ts `FromSchema`), and `npm run gen:manifests` writes it into plugin.json, the
 * data-only manifest the host reads; test/host/manifest-schemas.test.ts fails when they differ.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    stream: {
      enum: ['stdout', 'stderr'],
      default: 'stdout',
      description: 'Where cards are printed.',
    },
  },
} as const satisfies ConfigSchema;
