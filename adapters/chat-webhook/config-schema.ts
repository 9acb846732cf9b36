import type { ConfigSchema } from '../../core/index.js';

/**
 * The webhook notifier's `configSchema`: the one place it is written. Its config type is derived from it
 * (json-schema-to-ts `FromSchema`), and `npm run gen:manifests` writes it into plugin.json, the
 * data-only manifest the host reads; test/host/manifest-schemas.test.ts fails when they differ.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'signingSecret'],
  properties: {
    url: {
      type: 'string',
      httpsUrl: true,
      description: 'Where messages are POSTed.',
    },
    signingSecret: {
      type: 'string',
      secret: true,
      description: 'HMAC-SHA256 key; the receiver verifies X-Approvals-Signature with it.',
    },
    timeoutSeconds: {
      type: 'number',
      minimum: 0.1,
      maximum: 600,
      default: 10,
    },
  },
} as const satisfies ConfigSchema;
