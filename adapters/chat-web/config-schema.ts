import type { ConfigSchema } from '../../core/index.js';

/**
 * The web inbox's `configSchema`: the one place it is written. Its config type is derived from it
 * (json-schema-to-ts `FromSchema`), and `npm run gen:manifests` writes it into plugin.json, the
 * data-only manifest the host reads; test/host/manifest-schemas.test.ts fails when they differ.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['signingKey'],
  properties: {
    signingKey: {
      type: 'string',
      secret: true,
      minLength: 32,
      description: 'HMAC key (32 characters or more) that signs sign-in links and session cookies; rotating it signs everyone out.',
    },
    linkTtlMinutes: {
      type: 'integer',
      minimum: 1,
      maximum: 1440,
      default: 15,
      description: 'How long a sign-in link works, in minutes: 1 to 1440 (a day), default 15. A link signs in once.',
    },
    linkRequestIntervalMinutes: {
      type: 'integer',
      minimum: 1,
      maximum: 1440,
      default: 5,
      description:
        'How often one address may be sent a new sign-in link it asked for on the inbox\'s "Send me a new link" form, in minutes: 1 to 1440 (a day), default 5.',
    },
    sessionTtlMinutes: {
      type: 'integer',
      minimum: 5,
      maximum: 43200,
      default: 720,
      description:
        "How long a browser stays signed in after using a link, in minutes: 5 to 43200 (30 days), default 720 (12 hours). Also the session cookie's Max-Age.",
    },
    publicUrl: {
      type: 'string',
      httpsUrl: true,
      pattern: '^https?://[^/?#]+/?$',
      default: 'http://127.0.0.1:8080',
      description: 'Where approvers reach this host (origin, no path); sign-in links start with it.',
    },
  },
} as const satisfies ConfigSchema;
