import type { ConfigSchema } from '../../core/index.js';

/**
 * The Teams notifier's `configSchema`: the one place it is written. Its config type is derived from it
 * (json-schema-to-ts `FromSchema`), and `npm run gen:manifests` writes it into plugin.json, the
 * data-only manifest the host reads; test/host/manifest-schemas.test.ts fails when they differ.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tenantId'],
  dependencies: {
    appId: ['appPassword'],
    appPassword: ['appId'],
  },
  properties: {
    appId: {
      type: 'string',
      minLength: 1,
      description:
        'Microsoft App ID of the Azure Bot. Leave appId and appPassword out only against the Bot Framework Emulator or a fake connector on loopback: then nothing is signed or verified.',
    },
    appPassword: {
      type: 'string',
      secret: true,
      description: "Client secret of the bot's app registration.",
    },
    appType: {
      enum: ['SingleTenant', 'MultiTenant'],
      default: 'SingleTenant',
      description: "How the bot's app registration was created; a SingleTenant bot gets its token from tenantId.",
    },
    tenantId: {
      type: 'string',
      minLength: 1,
      description: 'Microsoft Entra tenant id of the approvers. Conversations are created in it and messages from other tenants are ignored.',
    },
    serviceUrl: {
      type: 'string',
      httpsUrl: true,
      default: 'https://smba.trafficmanager.net/teams/',
      description: 'Bot Connector base URL for proactive messages (tests point it at a fake on loopback).',
    },
    callbackPath: {
      type: 'string',
      pattern: '^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$',
      default: '/teams',
      description: 'Path prefix of the messaging endpoint: <callbackPath>/messages.',
    },
    users: {
      type: 'object',
      propertyNames: {
        format: 'email',
      },
      additionalProperties: {
        type: 'string',
        minLength: 1,
      },
      default: {},
      description:
        'How an approver\'s e-mail maps to a Teams user: {"<email>": "<Teams user id (29:...) or Entra object id>"}. Looked up first; also says who wrote to the bot.',
    },
    rosterConversationId: {
      type: 'string',
      minLength: 1,
      description:
        'A team the bot is installed in (19:...@thread.tacv2). E-mails not in users are looked up in its roster by UPN (GET /v3/conversations/{id}/members/{upn}), and senders by their Teams id.',
    },
    openIdMetadataUrl: {
      type: 'string',
      httpsUrl: true,
      default: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
      description: "Where the keys that sign Teams' requests are published. Leave the default; tests point it at a fake.",
    },
  },
} as const satisfies ConfigSchema;
