import type { ConfigSchema } from '../../core/index.js';

/**
 * The Slack notifier's `configSchema`: the one place it is written. Its config type is derived from it
 * (json-schema-to-ts `FromSchema`), and `npm run gen:manifests` writes it into plugin.json, the
 * data-only manifest the host reads; test/host/manifest-schemas.test.ts fails when they differ.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['botToken', 'signingSecret'],
  properties: {
    botToken: {
      type: 'string',
      secret: true,
      description: 'Bot user OAuth token (xoxb-...).',
    },
    signingSecret: {
      type: 'string',
      secret: true,
      description: "The app's signing secret; every callback is verified with it.",
    },
    apiUrl: {
      type: 'string',
      httpsUrl: true,
      default: 'https://slack.com/api/',
      description: 'Slack Web API base URL (tests point it at a fake on loopback).',
    },
    callbackPath: {
      type: 'string',
      pattern: '^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$',
      default: '/slack',
      description: 'Path prefix of the callbacks: <callbackPath>/commands, /interactivity, /events.',
    },
    appHome: {
      type: 'boolean',
      default: true,
      description: 'Publish the App Home tab (what is waiting on me) when a person opens it.',
    },
    teamId: {
      type: 'string',
      pattern: '^[TE][A-Z0-9]{2,30}$',
      description:
        "The Slack workspace id (T...), or Enterprise organization id (E...) for an org-wide install, whose callbacks are served; a signed request from any other is refused with 403. Default: the bot token's own, from auth.test. Recommended.",
    },
  },
} as const satisfies ConfigSchema;
