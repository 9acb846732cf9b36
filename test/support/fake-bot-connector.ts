import { generateKeyPairSync, randomBytes, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Bot Connector (Microsoft Teams' side of the Bot Framework) on 127.0.0.1 for tests, with the
 * documented request and response shapes:
 * - `POST /teams/v3/conversations` → 201 `{id}`: a 1:1 conversation with one member (`members[0].id`
 *   a Teams user id or Entra object id), `tenantId` or `channelData.tenant.id` required; the same
 *   member always gets the same conversation id, as Teams answers;
 * - `POST /teams/v3/conversations/{id}/activities` and `…/activities/{replyToId}` → 201 `{id}`;
 * - `PUT /teams/v3/conversations/{id}/activities/{activityId}` → 200 `{id}`;
 * - `GET /teams/v3/conversations/{id}/members/{userId}` → a TeamsChannelAccount, by Teams id, UPN or
 *   Entra object id; 404 `MemberNotFoundInConversation` otherwise.
 * Errors are Bot Connector `ErrorResponse`s (`{error: {code, message}}`). The service URL has the
 * `/teams/` path the real one has, so a client that drops it fails here too.
 *
 * It also plays the channel's side of authentication: it publishes OpenID metadata and a JWKS
 * (`/v1/.well-known/openidconfiguration`, `/v1/keys`, shaped like login.botframework.com's, the key
 * endorsed for `msteams`) and signs channel → bot JWTs with that key. Bot → channel calls must carry
 * `Authorization: Bearer <botToken>` when a bot token is set.
 *
 * Every connector call is recorded. Faults: the next N calls answer 429 with `Retry-After`, or a 5xx.
 */

export interface FakeTeamsUser {
  /** Teams user id, `29:…`. */
  readonly id: string;
  /** Entra object id. */
  readonly aadObjectId: string;
  readonly email: string;
  readonly userPrincipalName?: string;
  readonly name: string;
}

export interface FakeConnectorCall {
  readonly method: string;
  /** Path below the service URL, decoded per segment: `v3/conversations/a:1/activities`. */
  readonly path: string;
  readonly segments: readonly string[];
  readonly body: unknown;
  readonly authorization: string | undefined;
  status: number;
}

export interface FakeActivity {
  readonly id: string;
  readonly conversationId: string;
  /** Every version the bot sent, oldest first; `PUT` adds one. */
  readonly versions: Record<string, unknown>[];
}

export type FakeConnectorFault = { readonly status: 429; readonly retryAfter: number } | { readonly status: 500 | 502 | 503 | 504 };

export interface FakeBotConnectorOptions {
  readonly tenantId: string;
  readonly users: readonly FakeTeamsUser[];
  /** Team conversation id → Teams ids of its members. */
  readonly rosters?: Readonly<Record<string, readonly string[]>>;
  /** When set, bot → channel calls must carry this bearer token. */
  readonly botToken?: string;
}

export interface FakeBotConnector {
  /** Service URL, ending in `/teams/`. */
  readonly serviceUrl: string;
  /** OpenID metadata URL to configure as `openIdMetadataUrl`. */
  readonly openIdMetadataUrl: string;
  readonly calls: FakeConnectorCall[];
  /** Activity id → activity, in creation order. */
  readonly activities: Map<string, FakeActivity>;
  /** Makes the next `times` connector calls fail with `fault`. */
  failNext(times: number, fault: FakeConnectorFault): void;
  /** The personal conversation of a user, created if needed (as Teams does when the app is installed). */
  personalConversation(userId: string): string;
  /** Activities in one conversation, newest version of each. */
  messagesIn(conversationId: string): Record<string, unknown>[];
  /** A channel → bot JWT as Teams would send it; `untrusted` signs with a key the metadata does not publish. */
  channelToken(claims: { readonly appId: string; readonly serviceUrl: string; readonly expiresInSeconds?: number; readonly untrusted?: boolean }): string;
  close(): Promise<void>;
}

const KEY_ID = 'fake-botframework-key-1';
const ISSUER = 'https://api.botframework.com';

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function signJwt(payload: Record<string, unknown>, key: KeyObject): string {
  const head = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: KEY_ID, x5t: KEY_ID }));
  const body = base64url(JSON.stringify(payload));
  const signature = sign('RSA-SHA256', Buffer.from(`${head}.${body}`), key);
  return `${head}.${body}.${base64url(signature)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class ConnectorError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The Adaptive Card subset the adapter sends, checked as the schema (adaptivecards.io/explorer) defines it,
 * with Universal Actions (learn.microsoft.com/adaptive-cards/authoring-cards/universal-action-model):
 * `Action.Execute` (optional `verb`, `data` an object), `Action.ShowCard` with a card, `Input.Text` with
 * an `id`, and `refresh` whose `action` is an `Action.Execute` and whose `userIds`, when given, are at
 * most 60 strings. A card using any of them must say version 1.5 or later, as Teams documents.
 */
function validCardElement(element: unknown): boolean {
  if (!isRecord(element)) return false;
  switch (element.type) {
    case 'TextBlock':
      return typeof element.text === 'string' && element.text.length > 0;
    case 'ActionSet':
      return Array.isArray(element.actions) && element.actions.every(validAction);
    case 'Container':
      return Array.isArray(element.items) && element.items.every(validCardElement);
    case 'Input.Text':
      return typeof element.id === 'string' && element.id.length > 0;
    default:
      return false;
  }
}

function validExecute(action: Record<string, unknown>): boolean {
  return (action.verb === undefined || typeof action.verb === 'string') && (action.data === undefined || isRecord(action.data));
}

function validAction(action: unknown): boolean {
  if (!isRecord(action) || typeof action.title !== 'string') return false;
  switch (action.type) {
    case 'Action.OpenUrl':
      return typeof action.url === 'string' && /^https?:\/\//.test(action.url);
    case 'Action.Execute':
      return validExecute(action);
    case 'Action.ShowCard':
      return validCard(action.card);
    default:
      return false;
  }
}

/** Whether the card (or any card inside it) uses Universal Actions. */
function usesUniversalActions(card: unknown): boolean {
  return JSON.stringify(card).includes('"Action.Execute"');
}

function validCard(card: unknown): boolean {
  if (!isRecord(card) || card.type !== 'AdaptiveCard' || typeof card.version !== 'string') return false;
  if (!Array.isArray(card.body) || !card.body.every(validCardElement)) return false;
  if (card.actions !== undefined && !(Array.isArray(card.actions) && card.actions.every(validAction))) return false;
  if (card.refresh !== undefined) {
    const refresh = card.refresh;
    if (!isRecord(refresh) || !isRecord(refresh.action) || refresh.action.type !== 'Action.Execute' || !validExecute(refresh.action)) return false;
    if (
      refresh.userIds !== undefined &&
      !(Array.isArray(refresh.userIds) && refresh.userIds.length <= 60 && refresh.userIds.every((u) => typeof u === 'string'))
    ) {
      return false;
    }
  }
  return !usesUniversalActions(card) || Number(card.version) >= 1.5;
}

function validActivity(body: unknown): boolean {
  if (!isRecord(body) || body.type !== 'message') return false;
  if (body.attachments === undefined) return typeof body.text === 'string' && body.text.length > 0;
  if (!Array.isArray(body.attachments) || body.attachments.length === 0) return false;
  return body.attachments.every((a) => isRecord(a) && a.contentType === 'application/vnd.microsoft.card.adaptive' && validCard(a.content));
}

/** Whether an `adaptiveCard/action` invoke response body has the documented shape (universal-action-model#response-format). */
export function validInvokeResponse(body: unknown): boolean {
  if (!isRecord(body) || typeof body.statusCode !== 'number') return false;
  if (body.statusCode === 200 && body.type === 'application/vnd.microsoft.card.adaptive') return validCard(body.value);
  if (body.statusCode === 200 && body.type === 'application/vnd.microsoft.activity.message') return typeof body.value === 'string' && body.value.length > 0;
  if (body.type === 'application/vnd.microsoft.error') return isRecord(body.value) && typeof body.value.message === 'string';
  return false;
}

/**
 * The `adaptiveCard/action` invoke Teams posts when `user` presses `action` (an `Action.Execute` of a
 * card, or its `refresh` action with `trigger: automatic`): `value.action` is a copy of the action with
 * the inputs' values merged into its `data` by input id (universal-action-model#request-format).
 */
export function cardActionInvoke(options: {
  readonly user: FakeTeamsUser;
  readonly conversationId: string;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly action: Record<string, unknown>;
  readonly inputs?: Readonly<Record<string, string>>;
  readonly trigger?: 'manual' | 'automatic';
  readonly replyToId?: string;
}): Record<string, unknown> {
  const { user, action } = options;
  const data = { ...(isRecord(action.data) ? action.data : {}), ...options.inputs };
  return {
    type: 'invoke',
    name: 'adaptiveCard/action',
    id: `f:${randomBytes(8).toString('hex')}`,
    channelId: 'msteams',
    serviceUrl: options.serviceUrl,
    timestamp: new Date().toISOString(),
    from: { id: user.id, name: user.name, aadObjectId: user.aadObjectId },
    recipient: { id: '28:bot', name: 'Approvals' },
    conversation: { id: options.conversationId, conversationType: 'personal', tenantId: options.tenantId },
    channelData: { tenant: { id: options.tenantId } },
    ...(options.replyToId ? { replyToId: options.replyToId } : {}),
    value: { action: { type: 'Action.Execute', id: '', verb: action.verb, data }, trigger: options.trigger ?? 'manual' },
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (data += chunk));
    request.on('end', () => resolve(data));
    request.on('error', reject);
  });
}

/** The channel's signing key and one it does not publish; made once, RSA key generation is slow. */
let keys: { readonly privateKey: KeyObject; readonly untrustedKey: KeyObject; readonly jwk: JsonWebKey } | undefined;
function signingKeys(): NonNullable<typeof keys> {
  if (!keys) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    keys = { privateKey, untrustedKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, jwk: publicKey.export({ format: 'jwk' }) };
  }
  return keys;
}

export async function startFakeBotConnector(options: FakeBotConnectorOptions): Promise<FakeBotConnector> {
  const { privateKey, untrustedKey, jwk } = signingKeys();

  const calls: FakeConnectorCall[] = [];
  const activities = new Map<string, FakeActivity>();
  /** Conversation id → member Teams ids. */
  const conversations = new Map<string, string[]>();
  const personal = new Map<string, string>();
  for (const [id, members] of Object.entries(options.rosters ?? {})) conversations.set(id, [...members]);
  const faults: FakeConnectorFault[] = [];
  let seq = 0;
  let origin = '';

  const userBy = (key: string): FakeTeamsUser | undefined => {
    const lower = key.toLowerCase();
    return options.users.find((u) => u.id === key || u.aadObjectId === key || (u.userPrincipalName ?? u.email).toLowerCase() === lower);
  };

  const personalConversation = (userId: string): string => {
    const user = userBy(userId);
    if (!user) throw new Error(`fake connector: no user ${userId}`);
    let id = personal.get(user.id);
    if (!id) {
      id = `a:${randomBytes(24).toString('base64url')}`;
      personal.set(user.id, id);
      conversations.set(id, [user.id]);
    }
    return id;
  };

  const addActivity = (conversationId: string, body: Record<string, unknown>): string => {
    // Teams activity ids in personal chats are millisecond timestamps.
    const id = String(1_700_000_000_000 + ++seq);
    activities.set(id, { id, conversationId, versions: [body] });
    return id;
  };

  const connector = (method: string, segments: string[], body: unknown): { status: number; body: unknown } => {
    const [v3, collection, conversationId, sub, subId, ...rest] = segments;
    if (v3 !== 'v3' || collection !== 'conversations' || rest.length > 0) throw new ConnectorError(404, 'NotFound', 'No such resource');
    if (conversationId === undefined) {
      if (method !== 'POST') throw new ConnectorError(405, 'MethodNotAllowed', 'Method not allowed');
      if (!isRecord(body) || body.isGroup === true || !Array.isArray(body.members) || body.members.length !== 1 || !isRecord(body.members[0])) {
        throw new ConnectorError(400, 'BadSyntax', 'Incorrect conversation creation parameters');
      }
      const channelData = isRecord(body.channelData) ? body.channelData : {};
      const tenant = typeof body.tenantId === 'string' ? body.tenantId : isRecord(channelData.tenant) ? channelData.tenant.id : undefined;
      if (tenant !== options.tenantId) throw new ConnectorError(400, 'BadArgument', 'Tenant id is required and must be the tenant of the member');
      // Teams cannot message a user by e-mail or UPN: only a Teams user id or Entra object id works.
      const member = body.members[0].id;
      const user = typeof member === 'string' ? userBy(member) : undefined;
      if (!user || (member !== user.id && member !== user.aadObjectId)) {
        throw new ConnectorError(400, 'BadArgument', 'Invalid user identity in provided tenant');
      }
      return { status: 201, body: { id: personalConversation(user.id) } };
    }
    const members = conversations.get(conversationId);
    if (!members) throw new ConnectorError(404, 'ConversationNotFound', 'Conversation not found.');
    if (sub === 'members' && subId !== undefined && method === 'GET') {
      const user = userBy(subId);
      if (!user || !members.includes(user.id))
        throw new ConnectorError(404, 'MemberNotFoundInConversation', 'The member could not be found in the conversation');
      return {
        status: 200,
        body: {
          id: user.id,
          name: user.name,
          objectId: user.aadObjectId,
          givenName: user.name.split(' ')[0],
          surname: user.name.split(' ').slice(1).join(' '),
          email: user.email,
          userPrincipalName: user.userPrincipalName ?? user.email,
          tenantId: options.tenantId,
          userRole: 'user',
        },
      };
    }
    if (sub !== 'activities') throw new ConnectorError(404, 'NotFound', 'No such resource');
    if (!validActivity(body)) throw new ConnectorError(400, 'BadSyntax', 'Activity is not a valid message');
    const activity = body as Record<string, unknown>;
    if (method === 'POST') {
      return { status: 201, body: { id: addActivity(conversationId, activity) } };
    }
    if (method === 'PUT' && subId !== undefined) {
      const existing = activities.get(subId);
      if (!existing || existing.conversationId !== conversationId) throw new ConnectorError(404, 'ActivityNotFound', 'Activity not found');
      existing.versions.push(activity);
      return { status: 200, body: { id: subId } };
    }
    throw new ConnectorError(405, 'MethodNotAllowed', 'Method not allowed');
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      response.end(body === undefined ? '' : JSON.stringify(body));
    };
    if (request.method === 'GET' && url.pathname === '/v1/.well-known/openidconfiguration') {
      return send(200, {
        issuer: ISSUER,
        authorization_endpoint: 'https://invalid.botframework.com',
        jwks_uri: `${origin}/v1/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
      });
    }
    if (request.method === 'GET' && url.pathname === '/v1/keys') {
      return send(200, { keys: [{ kty: 'RSA', use: 'sig', kid: KEY_ID, x5t: KEY_ID, n: jwk.n, e: jwk.e, endorsements: ['msteams'] }] });
    }
    if (!url.pathname.startsWith('/teams/')) return send(404, { error: { code: 'NotFound', message: 'No such resource' } });

    const raw = await readBody(request);
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return send(400, { error: { code: 'BadSyntax', message: 'Request body is not JSON' } });
    }
    const segments = url.pathname.slice('/teams/'.length).split('/').filter(Boolean).map(decodeURIComponent);
    const call: FakeConnectorCall = {
      method: request.method ?? 'GET',
      path: segments.join('/'),
      segments,
      body,
      authorization: typeof request.headers.authorization === 'string' ? request.headers.authorization : undefined,
      status: 0,
    };
    calls.push(call);
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      send(status, payload, headers);
    };

    if (options.botToken && call.authorization !== `Bearer ${options.botToken}`) {
      return answer(401, { message: 'Authorization has been denied for this request.' });
    }
    const fault = faults.shift();
    if (fault) {
      if (fault.status === 429)
        return answer(429, { error: { code: 'TooManyRequests', message: 'Too many requests' } }, { 'retry-after': String(fault.retryAfter) });
      return answer(fault.status, { error: { code: 'ServiceError', message: 'Service temporarily unavailable' } });
    }
    try {
      const result = connector(call.method, segments, body);
      return answer(result.status, result.body);
    } catch (error) {
      if (error instanceof ConnectorError) return answer(error.status, { error: { code: error.code, message: error.message } });
      return answer(500, { error: { code: 'ServiceError', message: String(error) } });
    }
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500);
      response.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    serviceUrl: `${origin}/teams/`,
    openIdMetadataUrl: `${origin}/v1/.well-known/openidconfiguration`,
    calls,
    activities,
    failNext(times, fault) {
      for (let i = 0; i < times; i++) faults.push(fault);
    },
    personalConversation,
    messagesIn(conversationId) {
      return [...activities.values()].filter((a) => a.conversationId === conversationId).map((a) => a.versions[a.versions.length - 1]!);
    },
    channelToken({ appId, serviceUrl, expiresInSeconds = 3600, untrusted = false }) {
      const now = Math.floor(Date.now() / 1000);
      // The claims Bot Framework puts in a channel → bot token (bot-framework-rest-connector-authentication).
      return signJwt(
        { iss: ISSUER, aud: appId, serviceurl: serviceUrl, nbf: now - 60, iat: now - 60, exp: now + expiresInSeconds },
        untrusted ? untrustedKey : privateKey,
      );
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
