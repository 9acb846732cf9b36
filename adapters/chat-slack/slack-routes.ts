import type { HomeView, KnownBlock, WebClient } from '@slack/web-api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actionComment, type Actor, type ApprovalActions, type ApprovalLookup, type HttpRoutes, type Logger, type QueuedApproval } from '../../core/index.js';
import {
  COMMENT_BLOCK,
  COMMENT_CALLBACK,
  OPTIONAL_COMMENT_CALLBACK,
  actionKind,
  approvalListBlocks,
  commentModal,
  homeView,
  listText,
  readCommentRequest,
  resultMessage,
} from './block-kit.js';
import { slackCall, type SlackConfig, type SlackDirectory } from './slack-notifier.js';
import type { SlackSignatureVerifier } from './slack-signature.js';

/** Approvals a list shows before "and N more". */
const LISTED = 20;
/** Where Slack's `response_url`s live; anything else in a payload is not posted to. */
const SLACK_HOOKS_ORIGIN = 'https://hooks.slack.com';

const NO_EMAIL = 'I cannot match your Slack account to a work e-mail address, so I cannot show you any approvals.';
const UNAVAILABLE = 'I could not look up your approvals just now. Please try again in a minute.';
const NOT_YOURS = 'That approval is not waiting on you.';
const NO_MODAL = 'I could not open the comment form. Please press the button again.';
const COMMENT_MISSING = 'Write a comment for the requester.';
const ACT_FAILED = 'Something went wrong while acting on that. Look at the card again before you retry.';

/** A message as a slash command response or a `response_url` post takes it. */
interface SlackReply {
  readonly response_type: 'ephemeral';
  readonly replace_original?: boolean;
  readonly text: string;
  readonly blocks?: KnownBlock[] | undefined;
}

/** The answer to a `view_submission` (https://docs.slack.dev/surfaces/modals#displaying_errors): errors keyed by block id. */
interface SubmissionErrors {
  readonly response_action: 'errors';
  readonly errors: Record<string, string>;
}

type Caller = { readonly email: string } | { readonly refusal: string };

/** The workspace a request says it comes from and, inside an Enterprise organization, that organization. */
interface RequestTeam {
  readonly team: string | undefined;
  readonly enterprise: string | undefined;
}

/** Why a verified request is not served: sent back as the HTTP answer. */
interface Refusal {
  readonly status: 403 | 503;
  readonly error: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function rawBody(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
}

function ephemeral(text: string, blocks?: KnownBlock[]): SlackReply {
  return blocks ? { response_type: 'ephemeral', text, blocks } : { response_type: 'ephemeral', text };
}

/**
 * Slack's callbacks for one notifier instance, under `callbackPath`:
 * - `POST /commands`: the `/approvals` slash command; answers ephemerally with what waits on the caller;
 * - `POST /interactivity`: `block_actions`; the View button (`approvals.open`, value = approval key)
 *   opens the approval in the browser and, here, offers the others waiting on the same person;
 *   `approvals.more` lists them all; an act button (`approvals.act.<action>`, value = the
 *   recipient's action token) is acknowledged at once and acted on afterwards through
 *   `ApprovalActions`, as the Slack user behind the signed request (their e-mail from `users.info`,
 *   never from the payload's text); a button whose action needs a comment (Send back) opens a
 *   modal first, and its `view_submission` acts with the comment; "Approve with comment…"
 *   (`approvals.act-comment.approve`, the Approve button's token) opens the same modal with the
 *   comment optional. The result is told to the
 *   clicker through the click's `response_url`; the card is redrawn by the outbox.
 * - `POST /events`: `url_verification`, and `app_home_opened` → `views.publish` of the Home tab.
 *
 * Every request is verified against its raw body before it is parsed, and then must come from the
 * served workspace (`teamId`, else the bot token's own from `auth.test`): the signing secret is
 * the app's, and an app distributed to several workspaces signs all their requests with it, so a
 * valid signature alone does not say which workspace's people are asking. A person only ever sees
 * approvals where they are an approver (invariant 4): the Slack user of the signed request is
 * resolved to their e-mail with `users.info`, lists come from `ApprovalLookup.waitingOn(thatEmail)`,
 * and an action naming an approval key is answered only if `forApprover(key, thatEmail)` returns it.
 * Lists are answered before the acknowledgement: the queue is local and at most two Slack calls are
 * made, which fits Slack's three-second window; a late answer to an event is retried by Slack and
 * publishing the Home tab again is harmless. Actions are not: the source may take seconds.
 */
export class SlackRoutes implements HttpRoutes {
  readonly id: string;
  private readonly replyOrigins: ReadonlySet<string>;
  /** The workspace learned from `auth.test` when `teamId` is not configured; unset again after a failure. */
  private learned: Promise<string> | undefined;

  constructor(
    private readonly instanceId: string,
    private readonly config: Pick<SlackConfig, 'callbackPath' | 'appHome' | 'apiUrl' | 'teamId'>,
    private readonly verifier: SlackSignatureVerifier,
    private readonly directory: SlackDirectory,
    private readonly client: WebClient,
    private readonly lookup: ApprovalLookup,
    private readonly actions: ApprovalActions,
    private readonly logger: Logger,
  ) {
    this.id = `${instanceId}:callbacks`;
    // The API origin is allowed too, so a fake Slack on loopback can stand in for hooks.slack.com.
    this.replyOrigins = new Set([SLACK_HOOKS_ORIGIN, new URL(config.apiUrl).origin]);
  }

  async register(app: FastifyInstance): Promise<void> {
    await app.register(
      async (scope) => {
        // The signature covers the bytes Slack sent, so both body types are kept raw and parsed
        // only after verification.
        const keepRaw = (_request: FastifyRequest, body: Buffer, done: (error: Error | null, body?: unknown) => void) => done(null, body);
        scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, keepRaw);
        scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, keepRaw);
        scope.addHook('preHandler', async (request, reply) => {
          const check = this.verifier.verify(header(request, 'x-slack-request-timestamp'), header(request, 'x-slack-signature'), rawBody(request));
          if (!check.ok) {
            this.logger.warn({ path: request.url, reason: check.reason }, 'refused a Slack request that failed signature verification');
            return reply.code(401).send({ error: 'invalid signature' });
          }
          return undefined;
        });

        // https://docs.slack.dev/interactivity/implementing-slash-commands: `team_id`, `enterprise_id`.
        scope.post('/commands', async (request, reply) => {
          const form = new URLSearchParams(rawBody(request).toString('utf8'));
          const refusal = await this.refusal(request, { team: str(form.get('team_id')), enterprise: str(form.get('enterprise_id')) });
          if (refusal) return reply.code(refusal.status).send({ error: refusal.error });
          return this.command(form);
        });

        scope.post('/interactivity', async (request, reply) => {
          const payload = parseJson(Buffer.from(new URLSearchParams(rawBody(request).toString('utf8')).get('payload') ?? ''));
          if (!isRecord(payload)) return reply.code(400).send({ error: 'expected a payload form field holding JSON' });
          // https://docs.slack.dev/reference/interaction-payloads/block_actions-payload: `team` {id,
          // enterprise_id} (null for an org-wide install), `enterprise` {id}.
          const team = isRecord(payload.team) ? payload.team : undefined;
          const enterprise = isRecord(payload.enterprise) ? str(payload.enterprise.id) : str(team?.enterprise_id);
          const refusal = await this.refusal(request, { team: str(team?.id), enterprise });
          if (refusal) return reply.code(refusal.status).send({ error: refusal.error });
          if (payload.type === 'view_submission') {
            const errors = this.submission(payload);
            return errors ? reply.code(200).send(errors) : reply.code(200).send();
          }
          await this.interaction(payload);
          return reply.code(200).send();
        });

        scope.post('/events', async (request, reply) => {
          const body = parseJson(rawBody(request));
          if (!isRecord(body)) return reply.code(400).send({ error: 'expected a JSON body' });
          // https://docs.slack.dev/reference/events/url_verification
          // It names no workspace, only proves the URL is the app's, and is answered with its own challenge.
          if (body.type === 'url_verification') return { challenge: str(body.challenge) ?? '' };
          // https://docs.slack.dev/apis/events-api/#callback-field: `team_id`, `enterprise_id` on the envelope.
          const refusal = await this.refusal(request, { team: str(body.team_id), enterprise: str(body.enterprise_id) });
          if (refusal) return reply.code(refusal.status).send({ error: refusal.error });
          const event = body.event;
          if (body.type === 'event_callback' && isRecord(event) && event.type === 'app_home_opened' && event.tab === 'home' && this.config.appHome) {
            const user = str(event.user);
            if (user) await this.publishHome(user);
          }
          return reply.code(200).send();
        });
      },
      { prefix: this.config.callbackPath },
    );
  }

  /** The served workspace or organization: `teamId`, else the bot token's own (`auth.test`, asked once). */
  private served(): Promise<string> {
    if (this.config.teamId) return Promise.resolve(this.config.teamId);
    this.learned ??= this.learnWorkspace().catch((error: unknown) => {
      this.learned = undefined;
      throw error;
    });
    return this.learned;
  }

  /** https://docs.slack.dev/reference/methods/auth.test: `team_id`, and `enterprise_id` with `is_enterprise_install`. */
  private async learnWorkspace(): Promise<string> {
    const me = await slackCall('auth.test', () => this.client.auth.test());
    const id = me.is_enterprise_install ? me.enterprise_id : me.team_id;
    if (!id) throw new Error(`Slack auth.test: answer without ${me.is_enterprise_install ? 'enterprise_id' : 'team_id'}`);
    this.logger.info({ teamId: id }, "serving the Slack callbacks of the bot token's workspace (set teamId to pin it)");
    return id;
  }

  /**
   * Why a verified request must not be served: it names another workspace (403), or the served
   * one is not known yet because `auth.test` failed (503, so Slack or the person tries again).
   */
  private async refusal(request: FastifyRequest, from: RequestTeam): Promise<Refusal | undefined> {
    let expected: string;
    try {
      expected = await this.served();
    } catch (error) {
      this.logger.error(
        { path: request.url, err: error instanceof Error ? error.message : String(error) },
        'refused a Slack request: the served workspace is unknown (auth.test failed; set teamId)',
      );
      return { status: 503, error: 'the served Slack workspace is not known yet' };
    }
    const given = expected.startsWith('E') ? from.enterprise : from.team;
    if (given === expected) return undefined;
    this.logger.warn(
      { path: request.url, team: from.team ?? null, enterprise: from.enterprise ?? null, expected },
      'refused a signed Slack request from another workspace',
    );
    return { status: 403, error: 'this app does not serve that workspace' };
  }

  /** The e-mail of the Slack user behind a verified request, or what to tell them instead. */
  private async caller(userId: unknown): Promise<Caller> {
    const id = str(userId);
    if (!id) return { refusal: NO_EMAIL };
    try {
      const email = await this.directory.emailOf(id);
      return email ? { email } : { refusal: NO_EMAIL };
    } catch (error) {
      this.logger.warn({ user: id, err: error instanceof Error ? error.message : String(error) }, 'users.info failed');
      return { refusal: UNAVAILABLE };
    }
  }

  /** Pending approvals of one person, at most {@link LISTED}, and how many were left out. */
  private async waiting(email: string, except?: string): Promise<{ shown: QueuedApproval[]; more: number }> {
    const all = (await this.lookup.waitingOn(email)).filter((a) => a.key !== except);
    return { shown: all.slice(0, LISTED), more: Math.max(0, all.length - LISTED) };
  }

  /** `/approvals` (https://docs.slack.dev/interactivity/implementing-slash-commands): form fields, answered in the response body. */
  private async command(form: URLSearchParams): Promise<SlackReply> {
    const who = await this.caller(form.get('user_id'));
    if ('refusal' in who) return ephemeral(who.refusal);
    try {
      const { shown, more } = await this.waiting(who.email);
      const heading = shown.length === 0 ? 'Nothing is waiting on you.' : `Waiting on you (${shown.length + more}):`;
      return ephemeral(listText(shown.length + more), approvalListBlocks(heading, shown, more));
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'approval lookup failed');
      return ephemeral(UNAVAILABLE);
    }
  }

  /** A `block_actions` payload (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload). */
  private async interaction(payload: Record<string, unknown>): Promise<void> {
    if (payload.type !== 'block_actions' || !Array.isArray(payload.actions)) return;
    const action: unknown = payload.actions[0];
    if (!isRecord(action)) return;
    const kind = actionKind(str(action.action_id) ?? '');
    if (!kind) return;
    if (kind === 'act' || kind === 'act-comment') {
      return this.background('button', this.teller(str(payload.response_url)), () => this.clicked(payload, action, kind === 'act-comment'));
    }
    const user = isRecord(payload.user) ? payload.user.id : undefined;
    const fromHome = isRecord(payload.container) && payload.container.type === 'view';
    const responseUrl = str(payload.response_url);
    const answer = async (message: SlackReply) => {
      if (!fromHome && responseUrl) await this.respond(responseUrl, message);
    };

    const who = await this.caller(user);
    if ('refusal' in who) return answer(ephemeral(who.refusal));
    const key = str(action.value);
    try {
      // An action naming an approval is answered only for one of its approvers; anyone else
      // learns nothing about it, not even whether it exists.
      if (key && !(await this.lookup.forApprover(key, who.email))) return answer(ephemeral(NOT_YOURS));
      if (fromHome) {
        if (kind === 'more' && typeof user === 'string') await this.publishHome(user);
        return;
      }
      const { shown, more } = await this.waiting(who.email, key);
      // Opening one approval offers the others; when there are none, opening says nothing.
      if (kind === 'open' && shown.length === 0) return;
      const heading =
        kind === 'open'
          ? `Also waiting on you (${shown.length + more}):`
          : shown.length === 0
            ? 'Nothing is waiting on you.'
            : `Waiting on you (${shown.length + more}):`;
      return answer(ephemeral(listText(shown.length + more), approvalListBlocks(heading, shown, more)));
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'approval lookup failed');
      return answer(ephemeral(UNAVAILABLE));
    }
  }

  /**
   * Work after the acknowledgement: Slack wants an answer within three seconds, and an action
   * waits on the source. A failure is logged and the clicker told (`tell`), since nothing else will.
   */
  private background(what: string, tell: (message: SlackReply) => Promise<void>, work: () => Promise<void>): void {
    void work().catch(async (error: unknown) => {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, `Slack ${what} failed after its acknowledgement`);
      await tell(ephemeral(ACT_FAILED));
    });
  }

  /** Answers the clicker through an interaction's `response_url`, when it has one. */
  private teller(responseUrl: string | undefined): (message: SlackReply) => Promise<void> {
    return (message) => (responseUrl ? this.respond(responseUrl, message) : Promise.resolve());
  }

  /** The clicker as the core takes them: the e-mail Slack's directory gives for the signed request's user. */
  private actor(email: string): Actor {
    return { email, channel: this.instanceId, channelName: 'Slack' };
  }

  /**
   * An act button, after the acknowledgement. A button whose action needs a comment opens the
   * comment modal for the card's own approver (anyone else is refused by the core straight away),
   * and so does an optional-comment twin ("Approve with comment…", `optional`), with the comment
   * optional; any other acts now. The button's token says which approval, revision, approver and
   * action; the core checks it.
   */
  private async clicked(payload: Record<string, unknown>, action: Record<string, unknown>, optional: boolean): Promise<void> {
    const responseUrl = str(payload.response_url);
    const tell = this.teller(responseUrl);
    const token = str(action.value);
    if (!token) return;
    const who = await this.caller(isRecord(payload.user) ? payload.user.id : undefined);
    if ('refusal' in who) return tell(ephemeral(who.refusal));

    const target = await this.actions.peek(token);
    const required = target ? actionComment(target.action) === 'required' : false;
    if (target && (required || optional) && target.approverEmail === who.email) {
      // The optional twin says "Approve with comment…": its modal is titled and submitted with the action's own label.
      const pressed = isRecord(action.text) ? str(action.text.text) : undefined;
      const label = (optional ? pressed?.replace(/ with comment…$/, '') : pressed) || target.action;
      const view = commentModal(label, target.title, { token, responseUrl }, !required);
      try {
        // https://docs.slack.dev/reference/methods/views.open: the trigger is valid for three seconds, once.
        await slackCall('views.open', () => this.client.views.open({ trigger_id: str(payload.trigger_id) ?? '', view }));
      } catch (error) {
        this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not open the comment modal');
        await tell(ephemeral(NO_MODAL));
      }
      return;
    }
    const result = await this.actions.act(token, this.actor(who.email));
    const { text, blocks } = resultMessage(result);
    await tell(ephemeral(text, blocks));
  }

  /**
   * A `view_submission` of the comment modal (https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload#view_submission):
   * an empty comment is answered with Slack's `errors` response, which keeps the modal open with
   * the error under the input; otherwise the modal closes and the action runs after the answer.
   * In the optional-comment modal an empty comment acts without one; a token for an action that
   * needs a comment still gets none from it, since the core refuses that action without one.
   */
  private submission(payload: Record<string, unknown>): SubmissionErrors | undefined {
    const view = isRecord(payload.view) ? payload.view : undefined;
    if (!view || (view.callback_id !== COMMENT_CALLBACK && view.callback_id !== OPTIONAL_COMMENT_CALLBACK)) return undefined;
    const optional = view.callback_id === OPTIONAL_COMMENT_CALLBACK;
    const request = readCommentRequest(str(view.private_metadata));
    if (!request) return undefined;
    const values = isRecord(view.state) && isRecord(view.state.values) ? view.state.values[COMMENT_BLOCK] : undefined;
    const input = isRecord(values) ? values[COMMENT_BLOCK] : undefined;
    const comment = isRecord(input) ? (str(input.value)?.trim() ?? '') : '';
    if (!comment && !optional) return { response_action: 'errors', errors: { [COMMENT_BLOCK]: COMMENT_MISSING } };
    const user = isRecord(payload.user) ? payload.user.id : undefined;
    const tell = this.teller(request.responseUrl);
    this.background('comment', tell, async () => {
      const who = await this.caller(user);
      if ('refusal' in who) return tell(ephemeral(who.refusal));
      const result = await this.actions.act(request.token, this.actor(who.email), comment ? { comment } : undefined);
      const { text, blocks } = resultMessage(result);
      await tell(ephemeral(text, blocks));
    });
    return undefined;
  }

  /** Posts to an interaction's `response_url` (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses). */
  private async respond(responseUrl: string, message: SlackReply): Promise<void> {
    let origin: string;
    try {
      origin = new URL(responseUrl).origin;
    } catch {
      return;
    }
    if (!this.replyOrigins.has(origin)) {
      this.logger.warn({ origin }, 'ignored a response_url outside Slack');
      return;
    }
    try {
      const res = await fetch(responseUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...message, replace_original: false }),
        redirect: 'error',
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) this.logger.warn({ status: res.status }, 'response_url refused the reply');
    } catch (error) {
      this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'posting to response_url failed');
    }
  }

  /** `views.publish` of one person's Home tab (https://docs.slack.dev/reference/methods/views.publish). */
  private async publishHome(userId: string): Promise<void> {
    try {
      const who = await this.caller(userId);
      let view: HomeView;
      if ('refusal' in who) view = { type: 'home', blocks: approvalListBlocks(who.refusal, []) };
      else {
        const { shown, more } = await this.waiting(who.email);
        view = homeView(shown, more);
      }
      await slackCall('views.publish', () => this.client.views.publish({ user_id: userId, view }));
    } catch (error) {
      this.logger.warn({ user: userId, err: error instanceof Error ? error.message : String(error) }, 'App Home publish failed');
    }
  }
}
