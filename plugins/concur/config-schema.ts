import type { ConfigSchema } from '../../core/index.js';

/**
 * The Concur source's `configSchema`: the one place it is written. `concur-config.ts` derives the
 * TypeScript type from it, and `npm run gen:manifests` writes it into plugin.json (the data-only
 * manifest the host reads); a test fails when plugin.json differs from it.
 * Secret fields say `type: 'string'`: the host checks it against the resolved secret, and it gives
 * the derived type a string.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    baseUrl: {
      type: 'string',
      httpsUrl: true,
      description: 'API origin for every call; default: the geolocation each token response names.',
    },
    authBaseUrl: {
      type: 'string',
      httpsUrl: true,
      default: 'https://us2.api.concursolutions.com',
      description: 'Where the first token is requested, before a geolocation is known.',
    },
    clientId: {
      type: 'string',
      minLength: 1,
    },
    clientSecret: {
      type: 'string',
      secret: true,
    },
    refreshToken: {
      type: 'string',
      secret: true,
      description: 'Company refresh token; rotates, the latest is kept in the queue store.',
    },
    requestToken: {
      type: 'string',
      secret: true,
      description: 'Company request token (24 h) for the credtype=authtoken grant; needs companyId.',
    },
    companyId: {
      type: 'string',
      format: 'uuid',
      description: 'Company UUID: deep links and the authtoken grant.',
    },
    webHost: {
      type: 'string',
      pattern: '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$',
      default: 'www.concursolutions.com',
      description: 'Host of the Concur web UI for View Expense Report links.',
    },
    pendingStatusCodes: {
      type: 'array',
      items: {
        type: 'string',
        pattern: '^[A-Z_]{3,8}$',
      },
      minItems: 1,
      default: ['A_PEND'],
    },
    completionStatusCodes: {
      type: 'array',
      items: {
        type: 'string',
        pattern: '^[A-Z_]{3,8}$',
      },
      default: ['A_APPR', 'A_ACCO', 'A_RESU', 'A_PECO', 'A_PBDG', 'A_EXTV', 'A_PVAL', 'A_TEXP'],
      description: 'Codes a report moves to when it leaves the pending ones; polled too, so completions show up within one interval.',
    },
    overlapSeconds: {
      type: 'number',
      minimum: 0,
      maximum: 86400,
      default: 300,
    },
    pageSize: {
      type: 'integer',
      minimum: 1,
      maximum: 100,
      default: 100,
    },
    enrich: {
      type: 'boolean',
      default: true,
      description: 'Read expense entries for a line-item summary on each card.',
    },
    backfillCallsPerCycle: {
      type: 'integer',
      minimum: 0,
      maximum: 500,
      default: 20,
      description:
        'Entries calls each cycle spends on the line items of cards a multi-page first sync took in without them, newest submission first; 0 = never (those cards get line items when their report changes). At most 500, so a cycle stays well inside a 60 s interval.',
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
          default: 20,
        },
        timeoutSeconds: {
          type: 'number',
          minimum: 0.1,
          maximum: 600,
          default: 10,
        },
      },
    },
    delegates: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: "Concur expense delegates (Spend User v4.1's Delegate extension; the company token needs spend.user.general.read).",
      properties: {
        notify: {
          type: 'boolean',
          default: false,
          description:
            "Also send each report's card to the approver's expense delegates who can approve and receive approval e-mails (inside any temporary delegation window); with actions on, they can act on it as delegates, under their own Concur token.",
        },
      },
    },
    actions: {
      type: 'array',
      items: { type: 'string', enum: ['approve', 'sendBack'] },
      uniqueItems: true,
      default: [],
      description:
        'Actions approvers may take from chat, each under their own Concur user token (they consent once); empty (the default): cards only link to Concur. Needs consent.publicUrl.',
    },
    consent: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'How an approver connects their Concur account (the OAuth2 authorization grant with PKCE, or the e-mailed one-time password grant), for actions.',
      properties: {
        publicUrl: {
          type: 'string',
          httpsUrl: true,
          description:
            "Origin (and optional path) of this host as the approver's browser reaches it; the consent callback is <publicUrl>/concur/<source id>/callback and must be the app's registered redirect URI.",
        },
        authorizeUrl: {
          type: 'string',
          httpsUrl: true,
          description: "Concur's authorize endpoint; default: <baseUrl>/oauth2/v0/authorize, else https://www-us.api.concursolutions.com/oauth2/v0/authorize.",
        },
        scopes: {
          type: 'array',
          items: { type: 'string', pattern: '^[A-Za-z0-9._:-]+$' },
          minItems: 1,
          default: ['openid', 'expense.report.read', 'expense.report.workflowstatus.write'],
          description: 'Scopes asked of each approver: reading their reportsToApprove and approving / sending back.',
        },
        methods: {
          type: 'array',
          items: { type: 'string', enum: ['authorization_code', 'otp'] },
          minItems: 1,
          uniqueItems: true,
          default: ['authorization_code'],
          description:
            "Ways the connect page offers: authorization_code (Concur's sign-in and consent page, then the callback) and otp (Concur e-mails the approver a one-time code they type on this host; no redirect).",
        },
        linkTtlMinutes: {
          type: 'integer',
          minimum: 1,
          maximum: 1440,
          default: 30,
          description: 'How long a "Connect your Concur account" link works, in minutes.',
        },
      },
    },
    events: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        "Push events (Concur's Event Subscription Service): reports arrive in seconds through the webhook <publicUrl>/concur/<source id>/events, and the poll becomes the safety net.",
      properties: {
        enabled: { type: 'boolean', default: false, description: 'Serve the webhook and take its events as triggers.' },
        publicUrl: {
          type: 'string',
          httpsUrl: true,
          description: 'Origin (and optional path) of this host as Concur reaches it, for `concur events subscribe`; default: consent.publicUrl.',
        },
        pollIntervalSeconds: {
          type: 'integer',
          minimum: 60,
          maximum: 86400,
          default: 900,
          description: 'The poll interval while events are healthy (the safety net); the source falls back to pollIntervalSeconds when they are not.',
        },
        silenceMinutes: {
          type: 'integer',
          minimum: 1,
          maximum: 10080,
          default: 720,
          description: 'No event for this long and the source falls back to its normal poll interval until the next one.',
        },
        maxRefused: {
          type: 'integer',
          minimum: 1,
          maximum: 100000,
          default: 20,
          description: 'Events refused as not authentic within silenceMinutes that make the source fall back to its normal poll interval.',
        },
        signature: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'The Concur-Signature check: RSA over the raw body, against the PEM public keys Concur publishes (list both while a rotation overlaps).',
          properties: {
            required: { type: 'boolean', default: true, description: 'Refuse events without a valid signature.' },
            publicKeyFiles: {
              type: 'array',
              items: { type: 'string', minLength: 1 },
              default: [],
              description: 'PEM files with the public keys, relative to the deployment file.',
            },
            algorithm: { type: 'string', enum: ['RSA-SHA256', 'RSA-SHA512', 'RSA-PSS-SHA256'], default: 'RSA-SHA256' },
            encoding: { type: 'string', enum: ['base64', 'hex'], default: 'base64' },
          },
        },
        clientCertificate: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description:
            "The mutual-TLS check of Concur's client certificate: tls (this host terminates TLS, http.tls.clientCaFile set), proxy (a TLS proxy checked it and sets proxyHeader to the subject), or off.",
          properties: {
            mode: { type: 'string', enum: ['tls', 'proxy', 'off'], default: 'off' },
            proxyHeader: { type: 'string', pattern: '^[A-Za-z0-9-]+$', default: 'x-client-cert-subject' },
            commonName: { type: 'string', minLength: 1, default: 'webhook.api.concursolutions.com' },
            organization: { type: 'string', minLength: 1, default: 'SAP SE' },
          },
        },
        maxBodyBytes: { type: 'integer', minimum: 1024, maximum: 10485760, default: 65536, description: 'Larger events are refused (413).' },
        maxAgeHours: {
          type: 'integer',
          minimum: 1,
          maximum: 720,
          default: 73,
          description: 'Events whose timeStamp is older are refused as replays (Concur retries for 72 hours).',
        },
      },
    },
    sandbox: {
      type: 'object',
      additionalProperties: false,
      description: 'Run against an in-process Concur sandbox (no credentials needed).',
      properties: {
        reports: {
          type: 'integer',
          minimum: 0,
          maximum: 1000000,
          default: 12,
        },
        approvers: {
          type: 'integer',
          minimum: 1,
          maximum: 100000,
          default: 3,
        },
        seed: {
          type: 'integer',
          minimum: -2147483648,
          maximum: 2147483647,
          default: 1,
        },
        faults: {
          type: 'string',
          default: 'none',
        },
        activitySeconds: {
          type: 'number',
          minimum: 0,
          maximum: 86400,
          default: 20,
        },
      },
    },
  },
  allOf: [
    {
      if: {
        not: {
          required: ['sandbox'],
        },
      },
      then: {
        required: ['clientId', 'clientSecret'],
      },
    },
    {
      if: {
        not: {
          anyOf: [
            {
              required: ['sandbox'],
            },
            {
              required: ['requestToken'],
            },
          ],
        },
      },
      then: {
        required: ['refreshToken'],
      },
    },
    {
      if: {
        required: ['requestToken'],
      },
      then: {
        required: ['companyId'],
      },
    },
    {
      if: {
        properties: { events: { properties: { enabled: { const: true } }, required: ['enabled'] } },
        required: ['events'],
      },
      then: {
        properties: {
          events: {
            anyOf: [
              { properties: { signature: { properties: { publicKeyFiles: { minItems: 1 } }, required: ['publicKeyFiles'] } }, required: ['signature'] },
              { properties: { signature: { properties: { required: { const: false } }, required: ['required'] } }, required: ['signature'] },
            ],
          },
        },
      },
    },
    {
      if: {
        properties: { actions: { minItems: 1 } },
        required: ['actions'],
      },
      then: {
        properties: { consent: { required: ['publicUrl'] } },
      },
    },
  ],
} as const satisfies ConfigSchema;
