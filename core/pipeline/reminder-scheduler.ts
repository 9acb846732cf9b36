import type { Approver } from '../model/approval.js';
import { cardFor, type Card } from '../model/card.js';
import { emailKey } from '../model/email.js';
import { buildIdempotencyKey } from '../model/idempotency-key.js';
import type { CardRenderer, OutboxDraft, ReminderCandidate, ReminderDraft } from '../model/queue-types.js';
import type { ReminderStore } from '../contracts/approval-queue.js';
import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';

/** The deployment's `reminders` block, defaults filled in (see deployment.ts). */
export interface ReminderSettings {
  /** Remind an approver once an approval has waited this long since their last notify or reminder. */
  readonly afterHours: number;
  /** Reminders per approver per approval version, digests included. */
  readonly maxReminders: number;
  /** Local `HH:MM` times in the approver's zone; start after end spans midnight, equal means no quiet hours. */
  readonly quietHours: { readonly start: string; readonly end: string };
  /** For approvers whose zone is unknown or not a valid IANA zone. */
  readonly defaultTimeZone: string;
  /** When set, reminders go out as one digest per approver per local day, at or after `at`. */
  readonly digest?: { readonly at: string } | undefined;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Candidates read per query; every page is read before planning, so an approver's digest is never split. */
const PAGE = 1_000;
/** Drafts written per transaction. */
const CHUNK = 200;

/** `HH:MM` (00:00 to 23:59) → minutes after midnight; undefined for anything else. */
export function parseClockTime(text: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

const formatters = new Map<string, Intl.DateTimeFormat | undefined>();

function formatter(timeZone: string): Intl.DateTimeFormat | undefined {
  if (formatters.has(timeZone)) return formatters.get(timeZone);
  let format: Intl.DateTimeFormat | undefined;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
  } catch {
    format = undefined; // RangeError: not a zone this runtime knows
  }
  // Zones come from source data, so the cache is bounded against a source inventing new ones.
  if (formatters.size >= 1_000) formatters.clear();
  formatters.set(timeZone, format);
  return format;
}

/** True for an IANA time zone this runtime knows (`Asia/Tokyo`, `UTC`). */
export function isTimeZone(timeZone: string): boolean {
  return timeZone.trim() !== '' && formatter(timeZone) !== undefined;
}

/** A wall-clock reading in one time zone. */
export interface LocalTime {
  /** The zone actually used (after any fallback). */
  readonly timeZone: string;
  /** `YYYY-MM-DD`. */
  readonly date: string;
  /** Minutes after local midnight. */
  readonly minutes: number;
}

/**
 * The local date and time at `at` in `timeZone`. An absent, unknown or invalid zone falls back to
 * `fallback`, and an invalid fallback to UTC: never throws. DST is the runtime's (ICU) business.
 */
export function localTime(at: Date, timeZone: string | undefined, fallback: string): LocalTime {
  const zone = [timeZone?.trim(), fallback, 'UTC'].find((z): z is string => !!z && formatter(z) !== undefined) ?? 'UTC';
  const parts = Object.fromEntries(
    formatter(zone)!
      .formatToParts(at)
      .map((p) => [p.type, p.value]),
  );
  return {
    timeZone: zone,
    date: `${parts.year}-${parts.month}-${parts.day}`,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

/** Whether a local time (minutes after midnight) falls in `[start, end)`; a window may span midnight. */
export function inQuietHours(minutes: number, quiet: { readonly start: string; readonly end: string }): boolean {
  const start = parseClockTime(quiet.start);
  const end = parseClockTime(quiet.end);
  if (start === undefined || end === undefined || start === end) return false;
  return start < end ? minutes >= start && minutes < end : minutes >= start || minutes < end;
}

/** The title of a digest of `count` approvals. */
export function digestTitle(count: number): string {
  return `${count} approval${count === 1 ? ' is' : 's are'} waiting on you`;
}

/** The card a digest carries besides its list, for channels that show one card per message. */
function digestSummary(email: string, count: number): Card {
  return {
    approvalKey: `digest:${email}`,
    kind: 'digest',
    revision: 0,
    title: digestTitle(count),
    requester: {},
    fields: [],
    lineItems: [],
    flags: [],
    actions: [],
  };
}

/**
 * Decides which reminders are owed now. Pure. Candidates in their approver's quiet hours are left
 * for later (they stay due). Without a digest each candidate gets a `remind` per channel, keyed
 * `remind-<n>` for its n-th reminder; with one, each person (by e-mail, so one digest across
 * sources) whose local time has passed `digest.at` gets one `digest` per channel keyed by their
 * local date, listing every candidate of theirs, each spending one reminder.
 */
export function planReminders(
  candidates: readonly ReminderCandidate[],
  settings: ReminderSettings,
  now: Date,
  options: { readonly channels: readonly string[]; readonly render: CardRenderer },
): ReminderDraft[] {
  const drafts: ReminderDraft[] = [];
  const spendOf = (c: ReminderCandidate) => ({
    approvalKey: c.approval.key,
    approverId: c.approver.sourceUserId,
    generation: c.approval.generation,
    sent: c.sent,
  });
  if (!settings.digest) {
    for (const c of candidates) {
      if (!emailKey(c.approver.email)) continue;
      if (inQuietHours(localTime(now, c.approver.timeZone, settings.defaultTimeZone).minutes, settings.quietHours)) continue;
      const { approval } = c;
      const card = cardFor(options.render(approval), c.approver);
      const n = c.sent + 1;
      const outbox = options.channels.map((channel): OutboxDraft => ({
        approvalKey: approval.key,
        source: approval.source,
        revision: approval.revision,
        channel,
        approver: c.approver,
        action: 'remind',
        card,
        idempotencyKey: buildIdempotencyKey({
          kind: 'approval',
          approvalKey: approval.key,
          generation: approval.generation,
          revision: approval.revision,
          approverId: c.approver.sourceUserId,
          channel,
          action: `remind-${n}`,
        }),
        state: 'pending',
      }));
      drafts.push({ outbox, spends: [spendOf(c)] });
    }
    return drafts;
  }

  const at = parseClockTime(settings.digest.at) ?? 0;
  const people = new Map<string, ReminderCandidate[]>();
  for (const c of candidates) {
    const email = emailKey(c.approver.email);
    if (!email) continue;
    const mine = people.get(email);
    if (mine) mine.push(c);
    else people.set(email, [c]);
  }
  for (const [email, mine] of people) {
    const approver: Approver = { ...mine[0]!.approver, timeZone: mine.find((c) => c.approver.timeZone)?.approver.timeZone };
    const local = localTime(now, approver.timeZone, settings.defaultTimeZone);
    if (local.minutes < at || inQuietHours(local.minutes, settings.quietHours)) continue;
    const listed = [...mine].sort((a, b) => cmp(a.approval.queuedAt, b.approval.queuedAt) || cmp(a.approval.key, b.approval.key));
    const cards = listed.map((c) => options.render(c.approval));
    const summary = digestSummary(email, cards.length);
    const outbox = options.channels.map((channel): OutboxDraft => ({
      approvalKey: summary.approvalKey,
      source: listed[0]!.approval.source,
      revision: 0,
      channel,
      approver,
      action: 'digest',
      card: summary,
      digest: cards,
      idempotencyKey: buildIdempotencyKey({ kind: 'digest', email, channel, date: local.date }),
      state: 'pending',
    }));
    drafts.push({ outbox, spends: listed.map(spendOf) });
  }
  return drafts;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface ReminderReport {
  /** Candidates whose reminders were due. */
  readonly due: number;
  /** Outbox entries written (reminders and digests, one per channel). */
  readonly scheduled: number;
}

export interface ReminderSchedulerOptions {
  readonly channels: readonly string[];
  readonly render: CardRenderer;
  readonly retentionDays: number;
}

/**
 * Turns due reminders into outbox entries; the host runs it every minute and once per `runOnce`.
 * Safe to run on every host of a shared queue at once: the queue spends each reminder once.
 */
export class ReminderScheduler {
  private running: Promise<ReminderReport> | undefined;

  constructor(
    private readonly queue: ReminderStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    readonly settings: ReminderSettings,
    private readonly options: ReminderSchedulerOptions,
  ) {}

  /** Schedules what is due now, or joins the pass already running. */
  runOnce(): Promise<ReminderReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves once no pass is running (the host is stopping). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<ReminderReport> {
    const now = this.clock.now();
    const query = {
      lastBefore: new Date(now.getTime() - this.settings.afterHours * HOUR_MS),
      maxReminders: this.settings.maxReminders,
      notBefore: new Date(now.getTime() - this.options.retentionDays * DAY_MS),
      limit: PAGE,
    };
    const candidates: ReminderCandidate[] = [];
    for (;;) {
      const last = candidates.at(-1);
      const after = last && { lastAt: last.lastAt, approvalKey: last.approval.key, approverId: last.approver.sourceUserId };
      const page = await this.queue.dueReminders({ ...query, after });
      candidates.push(...page);
      if (page.length < PAGE) break;
    }
    const drafts = planReminders(candidates, this.settings, now, this.options);
    let scheduled = 0;
    for (let i = 0; i < drafts.length; i += CHUNK) scheduled += await this.queue.scheduleReminders(drafts.slice(i, i + CHUNK), now);
    if (scheduled > 0) this.logger.info({ due: candidates.length, scheduled }, 'reminders scheduled');
    return { due: candidates.length, scheduled };
  }
}
