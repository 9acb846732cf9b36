import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Slack on 127.0.0.1 for tests: the Web API methods the Slack notifier uses, with Slack's
 * documented request and response shapes (docs.slack.dev/reference/methods/<method>), and a
 * `response_url` endpoint for interaction replies. Requests are taken the way @slack/web-api
 * sends them (POST, form-encoded, complex arguments as JSON strings, `Authorization: Bearer`)
 * or as JSON bodies; API errors are HTTP 200 with `{ok: false, error}`, as Slack answers them.
 * Every call is recorded. Faults: HTTP 5xx, 429 with `Retry-After`, a reply lost after the call
 * took effect, and `users_not_found` for chosen e-mails; a method can be held until released, to
 * see what an app does while Slack has not answered. `views.open` takes each trigger id once.
 */

export interface FakeSlackUser {
  readonly id: string;
  readonly email: string;
  readonly name?: string;
  readonly deleted?: boolean;
  readonly isBot?: boolean;
}

export interface FakeSlackCall {
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly contentType: string;
  /** HTTP status answered. */
  status: number;
  /** `error` of an `{ok: false}` answer. */
  error?: string;
}

export interface FakeSlackMessage {
  readonly type: 'message';
  readonly ts: string;
  readonly user: string;
  readonly bot_id: string;
  readonly app_id: string;
  readonly team: string;
  text?: string;
  blocks?: unknown[];
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  edited?: { user: string; ts: string };
}

export type FakeSlackFault =
  /** Answer with this HTTP status, without doing the call. */
  | { readonly kind: 'http'; readonly status: number; readonly retryAfter?: string }
  /** Answer 429 with `Retry-After: <seconds>` and `{ok: false, error: "ratelimited"}`. */
  | { readonly kind: 'rate-limited'; readonly retryAfter: number }
  /** Do the call, then answer with this HTTP status: the caller cannot know it took effect. */
  | { readonly kind: 'lost-reply'; readonly status: number };

export const FAKE_TEAM_ID = 'T0FAKE0001';
export const FAKE_BOT_USER_ID = 'U0FAKEBOT1';
const BOT_ID = 'B0FAKEBOT1';
const APP_ID = 'A0FAKEAPP1';

/** An `{ok: false}` answer. */
class SlackApiError extends Error {
  constructor(
    readonly code: string,
    readonly messages: string[] = [],
  ) {
    super(code);
  }
}

type Args = Record<string, unknown>;

function required(args: Args, ...names: string[]): void {
  const missing = names.filter((n) => args[n] === undefined || args[n] === '');
  // Slack answers a missing required argument with invalid_arguments and names it in response_metadata.
  if (missing.length > 0)
    throw new SlackApiError(
      'invalid_arguments',
      missing.map((n) => `[ERROR] missing required field: ${n}`),
    );
}

function text(args: Args, name: string): string | undefined {
  const v = args[name];
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

function bool(args: Args, name: string): boolean {
  const v = args[name];
  return v === true || v === 'true' || v === '1' || v === 1;
}

/** A complex argument: a JSON string in a form body, a value in a JSON body. */
function json(args: Args, name: string, error: string): unknown {
  const v = args[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    throw new SlackApiError(error);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A text object as Block Kit defines it: plain_text or mrkdwn, 1..max characters. */
function textObject(value: unknown, max: number, plainOnly = false): boolean {
  if (!isRecord(value) || typeof value.text !== 'string') return false;
  if (value.type !== 'plain_text' && (plainOnly || value.type !== 'mrkdwn')) return false;
  return value.text.length >= 1 && value.text.length <= max;
}

function button(value: unknown): boolean {
  if (!isRecord(value) || value.type !== 'button' || !textObject(value.text, 75, true)) return false;
  if (value.style !== undefined && value.style !== 'primary' && value.style !== 'danger') return false;
  if (value.url !== undefined && (typeof value.url !== 'string' || value.url.length > 3000)) return false;
  if (value.value !== undefined && (typeof value.value !== 'string' || value.value.length > 2000)) return false;
  if (value.action_id !== undefined && (typeof value.action_id !== 'string' || value.action_id.length > 255)) return false;
  return true;
}

/**
 * An input block (docs.slack.dev/reference/block-kit/blocks/input-block), modals only: label
 * plain_text ≤ 2000, block_id ≤ 255; here with the one element the app uses, a
 * plain_text_input (action_id ≤ 255, max_length ≤ 3000).
 */
function inputBlock(b: Record<string, unknown>): boolean {
  if (!textObject(b.label, 2000, true) || (b.block_id !== undefined && (typeof b.block_id !== 'string' || b.block_id.length > 255))) return false;
  const e = b.element;
  if (!isRecord(e) || e.type !== 'plain_text_input') return false;
  if (e.action_id !== undefined && (typeof e.action_id !== 'string' || e.action_id.length > 255)) return false;
  return e.max_length === undefined || (typeof e.max_length === 'number' && e.max_length >= 1 && e.max_length <= 3000);
}

/**
 * The Block Kit limits the notifier must respect (docs.slack.dev/reference/block-kit/blocks):
 * 50 blocks in a message, 100 in a Home tab or modal; header plain_text ≤ 150; section text ≤ 3000 and at
 * most 10 fields of ≤ 2000; actions ≤ 25 elements; context ≤ 10 elements; button text plain_text ≤ 75;
 * input blocks only in modals.
 */
function validBlocks(blocks: unknown, maxBlocks: number, modal = false): boolean {
  if (!Array.isArray(blocks) || blocks.length > maxBlocks) return false;
  return blocks.every((b) => {
    if (!isRecord(b)) return false;
    switch (b.type) {
      case 'header':
        return textObject(b.text, 150, true);
      case 'section': {
        const hasText = b.text !== undefined;
        const hasFields = b.fields !== undefined;
        if (!hasText && !hasFields) return false;
        if (hasText && !textObject(b.text, 3000)) return false;
        if (hasFields && (!Array.isArray(b.fields) || b.fields.length > 10 || !b.fields.every((f) => textObject(f, 2000)))) return false;
        return b.accessory === undefined || button(b.accessory);
      }
      case 'actions':
        return Array.isArray(b.elements) && b.elements.length >= 1 && b.elements.length <= 25 && b.elements.every(button);
      case 'context':
        return Array.isArray(b.elements) && b.elements.length >= 1 && b.elements.length <= 10 && b.elements.every((e) => textObject(e, 3000));
      case 'divider':
        return true;
      case 'input':
        return modal && inputBlock(b);
      default:
        return false;
    }
  });
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export class FakeSlack {
  /** The bot token the fake accepts. */
  static readonly TOKEN = 'xoxb-0000000001-0000000001-fakefakefakefakefakefake';

  readonly calls: FakeSlackCall[] = [];
  /** Bodies posted to `response_url`s, in order. */
  readonly responses: { path: string; body: unknown }[] = [];
  /** DM channel id → messages, oldest first. */
  readonly channels = new Map<string, FakeSlackMessage[]>();
  /** Slack user id → the Home tab view last published. */
  readonly homeViews = new Map<string, Record<string, unknown>>();
  /** Modals opened with `views.open`, in order, with the trigger id each used. */
  readonly modals: { triggerId: string; view: Record<string, unknown> }[] = [];
  private readonly triggersUsed = new Set<string>();
  private readonly held = new Map<string, Promise<void>>();
  private readonly watchers = new Set<() => void>();
  private readonly users = new Map<string, FakeSlackUser>();
  private readonly hidden = new Set<string>();
  private faults: { fault: FakeSlackFault; methods?: ReadonlySet<string>; remaining: number }[] = [];
  private seq = 0;

  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<FakeSlack> {
    let fake: FakeSlack | undefined;
    const server = createServer((req, res) => {
      void fake!.handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    fake = new FakeSlack(server, `http://127.0.0.1:${port}`);
    return fake;
  }

  /** The Web API base URL, as the notifier's `apiUrl`. */
  get apiUrl(): string {
    return `${this.origin}/api/`;
  }

  /** A `response_url` on this fake, as an interaction payload carries it. */
  responseUrl(name = 'actions/T0FAKE0001/1/fake'): string {
    return `${this.origin}/hooks/${name}`;
  }

  addUser(user: FakeSlackUser): void {
    this.users.set(user.id, user);
  }

  /** `users.lookupByEmail` answers `users_not_found` for this e-mail from now on. */
  hideEmail(email: string): void {
    this.hidden.add(email.toLowerCase());
  }

  /** Fails the next `times` calls (of `methods`, or any) with `fault`. */
  fail(fault: FakeSlackFault, options: { times?: number; methods?: string[] } = {}): void {
    this.faults.push({ fault, methods: options.methods ? new Set(options.methods) : undefined, remaining: options.times ?? Number.POSITIVE_INFINITY });
  }

  /** Slack is healthy again. */
  recover(): void {
    this.faults = [];
  }

  /** Calls to `method` wait, unanswered, until the returned function is called. */
  hold(method: string): () => void {
    let release!: () => void;
    this.held.set(
      method,
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    );
    return () => {
      this.held.delete(method);
      release();
    };
  }

  /**
   * Resolves with `check()`'s first defined answer, asked now and again after every call and
   * `response_url` post this fake records: waiting for what an app does after it has answered.
   */
  until<T>(check: () => T | undefined): Promise<T> {
    return new Promise((resolve) => {
      const look = () => {
        const found = check();
        if (found === undefined) return;
        this.watchers.delete(look);
        resolve(found);
      };
      this.watchers.add(look);
      look();
    });
  }

  /** A trigger id as Slack puts one in an interaction payload (`views.open` takes each once). */
  triggerId(): string {
    return `${Date.now()}.${++this.seq}.${Math.random().toString(16).slice(2, 14).padEnd(12, '0')}`;
  }

  private changed(): void {
    for (const look of [...this.watchers]) look();
  }

  callsTo(method: string): FakeSlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** The DM channel of the bot and a user (what `conversations.open` returns). */
  dmChannelOf(userId: string): string {
    return `D${userId.slice(1)}`;
  }

  messagesTo(userId: string): FakeSlackMessage[] {
    return this.channels.get(this.dmChannelOf(userId)) ?? [];
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const raw = await readBody(req);
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

    if (url.pathname.startsWith('/hooks/')) {
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // a form or text reply is recorded as it came
      }
      this.responses.push({ path: url.pathname, body });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      this.changed();
      return;
    }
    if (!url.pathname.startsWith('/api/') || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    const method = url.pathname.slice('/api/'.length);

    let args: Args;
    if (contentType === 'application/x-www-form-urlencoded') args = Object.fromEntries(new URLSearchParams(raw));
    else if (contentType === 'application/json') {
      try {
        const parsed: unknown = JSON.parse(raw || '{}');
        args = isRecord(parsed) ? parsed : {};
      } catch {
        args = {};
      }
    } else args = Object.fromEntries(url.searchParams);
    const call: FakeSlackCall = { method, args, contentType, status: 200 };
    this.calls.push(call);
    this.changed();
    await this.held.get(method);
    try {
      this.answer(req, res, method, args, contentType, call);
    } finally {
      this.changed();
    }
  }

  private answer(req: IncomingMessage, res: ServerResponse, method: string, args: Args, contentType: string, call: FakeSlackCall): void {
    const fault = this.takeFault(method);
    if (fault?.kind === 'http') {
      call.status = fault.status;
      res.writeHead(fault.status, { 'content-type': 'text/plain', ...(fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter }) });
      res.end('upstream unavailable');
      return;
    }
    if (fault?.kind === 'rate-limited') {
      call.status = 429;
      call.error = 'ratelimited';
      this.send(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(fault.retryAfter) });
      return;
    }

    let result: Record<string, unknown>;
    try {
      this.authenticate(req, args, contentType);
      result = { ok: true, ...this.dispatch(method, args) };
    } catch (error) {
      if (!(error instanceof SlackApiError)) throw error;
      call.error = error.code;
      result = { ok: false, error: error.code, ...(error.messages.length ? { response_metadata: { messages: error.messages } } : {}) };
    }
    if (fault?.kind === 'lost-reply') {
      call.status = fault.status;
      res.writeHead(fault.status, { 'content-type': 'text/plain' });
      res.end('upstream unavailable');
      return;
    }
    this.send(res, 200, result);
  }

  private takeFault(method: string): FakeSlackFault | undefined {
    const armed = this.faults.find((f) => f.remaining > 0 && (!f.methods || f.methods.has(method)));
    if (!armed) return undefined;
    armed.remaining--;
    return armed.fault;
  }

  /** `Authorization: Bearer <token>`, or a `token` argument in a form body (docs.slack.dev/authentication/tokens). */
  private authenticate(req: IncomingMessage, args: Args, contentType: string): void {
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
    // A JSON body cannot carry the token: Slack only reads it from the header then.
    const token = bearer ?? (contentType === 'application/json' ? undefined : text(args, 'token'));
    if (!token) throw new SlackApiError('not_authed');
    if (token !== FakeSlack.TOKEN) throw new SlackApiError('invalid_auth');
  }

  private dispatch(method: string, args: Args): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return {
          url: 'https://fake.slack.com/',
          team: 'Fake Co',
          user: 'approvals',
          team_id: FAKE_TEAM_ID,
          user_id: FAKE_BOT_USER_ID,
          bot_id: BOT_ID,
          is_enterprise_install: false,
        };
      case 'chat.postMessage':
        return this.postMessage(args);
      case 'chat.update':
        return this.update(args);
      case 'users.lookupByEmail':
        return this.lookupByEmail(args);
      case 'users.info':
        return this.info(args);
      case 'conversations.open':
        return this.open(args);
      case 'conversations.history':
        return this.history(args);
      case 'views.publish':
        return this.publish(args);
      case 'views.open':
        return this.openView(args);
      default:
        throw new SlackApiError('unknown_method');
    }
  }

  private userJson(u: FakeSlackUser): Record<string, unknown> {
    return {
      id: u.id,
      team_id: FAKE_TEAM_ID,
      name: u.email.split('@')[0],
      deleted: u.deleted ?? false,
      real_name: u.name ?? u.email,
      is_bot: u.isBot ?? false,
      profile: { real_name: u.name ?? u.email, display_name: u.name ?? '', email: u.email },
    };
  }

  private nextTs(): string {
    return `${Math.floor(Date.now() / 1000)}.${String(++this.seq).padStart(6, '0')}`;
  }

  /** A user id opens (or finds) the DM with the bot; a known conversation id is itself. */
  private conversation(channel: string): string {
    if (/^[UW]/.test(channel)) {
      const user = this.users.get(channel);
      if (!user) throw new SlackApiError('channel_not_found');
      if (user.deleted) throw new SlackApiError('user_disabled');
      const dm = this.dmChannelOf(channel);
      if (!this.channels.has(dm)) this.channels.set(dm, []);
      return dm;
    }
    if (!this.channels.has(channel)) throw new SlackApiError('channel_not_found');
    return channel;
  }

  private content(args: Args): { text?: string; blocks?: unknown[]; metadata?: FakeSlackMessage['metadata'] } {
    const blocks = json(args, 'blocks', 'invalid_blocks_format');
    const body = text(args, 'text');
    if (blocks === undefined && !body) throw new SlackApiError('no_text');
    if (blocks !== undefined && !validBlocks(blocks, 50)) throw new SlackApiError('invalid_blocks');
    const metadata = json(args, 'metadata', 'invalid_metadata_format');
    if (metadata !== undefined && (!isRecord(metadata) || typeof metadata.event_type !== 'string' || !isRecord(metadata.event_payload))) {
      throw new SlackApiError('invalid_metadata_format');
    }
    return {
      ...(body !== undefined ? { text: body } : {}),
      ...(blocks !== undefined ? { blocks: blocks as unknown[] } : {}),
      ...(metadata !== undefined ? { metadata: metadata as FakeSlackMessage['metadata'] } : {}),
    };
  }

  /** https://docs.slack.dev/reference/methods/chat.postMessage */
  private postMessage(args: Args): Record<string, unknown> {
    required(args, 'channel');
    const channel = this.conversation(text(args, 'channel')!);
    const content = this.content(args);
    const message: FakeSlackMessage = {
      type: 'message',
      ts: this.nextTs(),
      user: FAKE_BOT_USER_ID,
      bot_id: BOT_ID,
      app_id: APP_ID,
      team: FAKE_TEAM_ID,
      ...content,
    };
    this.channels.get(channel)!.push(message);
    const { metadata: _metadata, ...shown } = message;
    return { channel, ts: message.ts, message: shown };
  }

  /** https://docs.slack.dev/reference/methods/chat.update */
  private update(args: Args): Record<string, unknown> {
    required(args, 'channel', 'ts');
    const channel = this.conversation(text(args, 'channel')!);
    const message = this.channels.get(channel)!.find((m) => m.ts === text(args, 'ts'));
    if (!message) throw new SlackApiError('message_not_found');
    const content = this.content(args);
    // Omitted blocks are kept, as chat.update documents; text is replaced when given.
    if (content.text !== undefined) message.text = content.text;
    if (content.blocks !== undefined) message.blocks = content.blocks;
    if (content.metadata) message.metadata = content.metadata;
    message.edited = { user: FAKE_BOT_USER_ID, ts: this.nextTs() };
    return { channel, ts: message.ts, text: message.text ?? '', message: { text: message.text, user: message.user, blocks: message.blocks } };
  }

  /** https://docs.slack.dev/reference/methods/users.lookupByEmail */
  private lookupByEmail(args: Args): Record<string, unknown> {
    required(args, 'email');
    const email = text(args, 'email')!.toLowerCase();
    const user = [...this.users.values()].find((u) => u.email.toLowerCase() === email);
    if (!user || this.hidden.has(email)) throw new SlackApiError('users_not_found');
    return { user: this.userJson(user) };
  }

  /** https://docs.slack.dev/reference/methods/users.info */
  private info(args: Args): Record<string, unknown> {
    required(args, 'user');
    const user = this.users.get(text(args, 'user')!);
    if (!user) throw new SlackApiError('user_not_found');
    return { user: this.userJson(user) };
  }

  /** https://docs.slack.dev/reference/methods/conversations.open (one user: the IM with the bot). */
  private open(args: Args): Record<string, unknown> {
    const users = text(args, 'users');
    const channel = text(args, 'channel');
    if (!users && !channel) throw new SlackApiError('invalid_arguments', ['[ERROR] missing required field: users or channel']);
    if (channel) return { channel: { id: this.conversation(channel) }, no_op: true, already_open: true };
    const ids = users!.split(',');
    if (ids.length !== 1) throw new SlackApiError('not_implemented');
    const existed = this.channels.has(this.dmChannelOf(ids[0]!));
    if (!this.users.has(ids[0]!)) throw new SlackApiError('user_not_found');
    const id = this.conversation(ids[0]!);
    return { channel: { id }, ...(existed ? { no_op: true, already_open: true } : {}) };
  }

  /** https://docs.slack.dev/reference/methods/conversations.history: newest first; metadata only with include_all_metadata. */
  private history(args: Args): Record<string, unknown> {
    required(args, 'channel');
    const channel = text(args, 'channel')!;
    const messages = this.channels.get(channel);
    if (!messages) throw new SlackApiError('channel_not_found');
    const limit = Math.min(999, Math.max(1, Number(text(args, 'limit') ?? 100) || 100));
    const withMetadata = bool(args, 'include_all_metadata');
    const page = [...messages]
      .reverse()
      .slice(0, limit)
      .map((m) => {
        const { metadata, ...rest } = m;
        return withMetadata && metadata ? { ...rest, metadata } : rest;
      });
    return { messages: page, has_more: messages.length > limit, pin_count: 0, response_metadata: { next_cursor: '' } };
  }

  /** https://docs.slack.dev/reference/methods/views.publish */
  private publish(args: Args): Record<string, unknown> {
    required(args, 'user_id', 'view');
    const view = json(args, 'view', 'invalid_arguments');
    if (!isRecord(view) || view.type !== 'home' || !validBlocks(view.blocks, 100))
      throw new SlackApiError('invalid_arguments', ['[ERROR] view must be a home view with valid blocks']);
    const userId = text(args, 'user_id')!;
    if (!this.users.has(userId)) throw new SlackApiError('user_not_found');
    this.homeViews.set(userId, view);
    return {
      view: {
        id: `V${String(++this.seq).padStart(8, '0')}`,
        team_id: FAKE_TEAM_ID,
        type: 'home',
        blocks: view.blocks,
        private_metadata: '',
        callback_id: '',
        hash: `${Date.now()}.fake`,
        app_id: APP_ID,
        bot_id: BOT_ID,
      },
    };
  }

  /**
   * https://docs.slack.dev/reference/methods/views.open with a modal (docs.slack.dev/reference/views/modal-views):
   * title plain_text ≤ 24, ≤ 100 blocks, `submit` (≤ 24) required with an input block, `close` ≤ 24,
   * `private_metadata` ≤ 3000, `callback_id` ≤ 255. A trigger id opens one view.
   */
  private openView(args: Args): Record<string, unknown> {
    required(args, 'view');
    const triggerId = text(args, 'trigger_id');
    if (!triggerId && !text(args, 'interactivity_pointer')) throw new SlackApiError('invalid_arguments', ['[ERROR] missing required field: trigger_id']);
    const view = json(args, 'view', 'invalid_arguments');
    const bad = (why: string) => new SlackApiError('invalid_arguments', [`[ERROR] ${why}`]);
    if (!isRecord(view) || view.type !== 'modal') throw bad('view must be a modal');
    if (!textObject(view.title, 24, true)) throw bad('title must be plain_text of at most 24 characters');
    if (!validBlocks(view.blocks, 100, true)) throw bad('blocks are not valid');
    const hasInput = (view.blocks as Record<string, unknown>[]).some((b) => b.type === 'input');
    if (hasInput ? !textObject(view.submit, 24, true) : view.submit !== undefined && !textObject(view.submit, 24, true))
      throw bad('submit is required with an input block');
    if (view.close !== undefined && !textObject(view.close, 24, true)) throw bad('close must be plain_text of at most 24 characters');
    if (view.private_metadata !== undefined && (typeof view.private_metadata !== 'string' || view.private_metadata.length > 3000))
      throw bad('private_metadata');
    if (view.callback_id !== undefined && (typeof view.callback_id !== 'string' || view.callback_id.length > 255)) throw bad('callback_id');
    if (triggerId) {
      if (this.triggersUsed.has(triggerId)) throw new SlackApiError('exchanged_trigger_id');
      this.triggersUsed.add(triggerId);
    }
    this.modals.push({ triggerId: triggerId ?? '', view });
    return {
      view: {
        id: `V${String(++this.seq).padStart(8, '0')}`,
        team_id: FAKE_TEAM_ID,
        type: 'modal',
        ...view,
        state: { values: {} },
        hash: `${Date.now()}.fake`,
        app_id: APP_ID,
        bot_id: BOT_ID,
      },
    };
  }
}

/**
 * The headers Slack puts on a request to an app (docs.slack.dev/authentication/verifying-requests-from-slack):
 * `X-Slack-Signature: v0=hex(HMAC-SHA256(signingSecret, "v0:{timestamp}:{body}"))`.
 */
export function slackSignatureHeaders(signingSecret: string, body: string, timestampSeconds = Math.floor(Date.now() / 1000)): Record<string, string> {
  const signature = createHmac('sha256', signingSecret).update(`v0:${timestampSeconds}:${body}`).digest('hex');
  return { 'x-slack-request-timestamp': String(timestampSeconds), 'x-slack-signature': `v0=${signature}` };
}
