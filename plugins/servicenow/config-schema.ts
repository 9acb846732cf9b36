import type { ConfigSchema } from '../../core/index.js';

/**
 * The ServiceNow source's `configSchema`: the one place it is written. `servicenow-config.ts`
 * derives the TypeScript type from it, and `npm run gen:manifests` writes it into plugin.json (the
 * data-only manifest the host reads); a test fails when plugin.json differs from it.
 * Secret fields say `type: 'string'`: the host checks it against the resolved secret, and it gives
 * the derived type a string. The `auth` branches carry no `default`: ajv ignores defaults inside
 * `oneOf` (and refuses them in strict mode), so the plugin fills in `grant` itself.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    instanceUrl: {
      type: 'string',
      httpsUrl: true,
      description: 'The instance, e.g. https://acme.service-now.com: every Table API and token call, and the deep links on cards.',
    },
    auth: {
      description:
        'How the integration user signs in: OAuth (an Application Registry client; client_credentials needs Washington DC or later and an OAuth Application User) or basic auth.',
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'clientId', 'clientSecret'],
          properties: {
            type: { const: 'oauth' },
            clientId: { type: 'string', minLength: 1 },
            clientSecret: { type: 'string', secret: true },
            grant: {
              type: 'string',
              enum: ['client_credentials', 'refresh_token'],
              description: 'client_credentials (the default) or refresh_token (needs refreshToken).',
            },
            refreshToken: {
              type: 'string',
              secret: true,
              description: "A refresh token of the integration user's (100 days by default); the latest is kept in the queue store.",
            },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'username', 'password'],
          properties: {
            type: { const: 'basic' },
            username: { type: 'string', minLength: 1 },
            password: { type: 'string', secret: true },
          },
        },
      ],
    },
    pageSize: {
      type: 'integer',
      minimum: 1,
      maximum: 10000,
      default: 100,
      description: 'Records per Table API page (sysparm_limit, always sent: the default limit is not documented).',
    },
    overlapSeconds: {
      type: 'number',
      minimum: 0,
      maximum: 86400,
      default: 60,
      description: 'Each poll reads again from this long before the cursor: sys_updated_on has whole seconds and updates can land late.',
    },
    tables: {
      type: 'array',
      items: { type: 'string', enum: ['sc_req_item', 'change_request'] },
      uniqueItems: true,
      default: ['sc_req_item', 'change_request'],
      description:
        'Approved-record tables whose record is read for the card (number, description, requester, price or risk and dates); approvals of other tables show the approval only.',
    },
    currency: {
      type: 'string',
      pattern: '^[A-Z]{3}$',
      default: 'USD',
      description: "ISO 4217 code of the instance's currency fields (a requested item's price × quantity is the card's amount).",
    },
    timeoutSeconds: {
      type: 'number',
      minimum: 0.1,
      maximum: 600,
      default: 60,
    },
    maxAttempts: {
      type: 'integer',
      minimum: 1,
      maximum: 10,
      default: 4,
    },
    identity: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        ttlHours: {
          type: 'number',
          minimum: 0,
          maximum: 8760,
          default: 24,
        },
        bulkThreshold: {
          type: 'integer',
          minimum: 1,
          maximum: 10000,
          default: 5,
          description: 'This many unknown approvers or more are read with one sys_idIN… listing; fewer, one GET each.',
        },
      },
    },
    sandbox: {
      type: 'object',
      additionalProperties: false,
      description: 'Run against an in-process ServiceNow sandbox (no instance or credentials needed).',
      properties: {
        approvals: {
          type: 'integer',
          minimum: 0,
          maximum: 100000,
          default: 12,
          description: 'Requested items seeded, each with one or two approval records (a third of them as change requests).',
        },
        seed: {
          type: 'integer',
          minimum: -2147483648,
          maximum: 2147483647,
          default: 1,
        },
        faults: {
          type: 'string',
          enum: ['none', 'flaky', 'slow', 'storm'],
          default: 'none',
        },
        activitySeconds: {
          type: 'number',
          minimum: 0,
          maximum: 86400,
          default: 20,
          description: 'Every this many seconds the sandbox plays a user: a new request, an approval or a rejection; 0 = never.',
        },
      },
    },
  },
  allOf: [
    {
      if: { not: { required: ['sandbox'] } },
      then: { required: ['instanceUrl', 'auth'] },
    },
    {
      if: {
        properties: { auth: { properties: { grant: { const: 'refresh_token' } }, required: ['grant'] } },
        required: ['auth'],
      },
      then: { properties: { auth: { required: ['refreshToken'] } } },
    },
  ],
} as const satisfies ConfigSchema;
