import { SeededRandom } from './sandbox-random.js';

/** One Concur user of the seeded company: an employee, an approver, or both. */
export interface SandboxUser {
  readonly index: number;
  /** Identity v4 UUID, used by every v4 API. */
  readonly id: string;
  /** Concur login ID (`userName` in Identity, `OwnerLoginID`/`ApproverLoginID` in v3). */
  readonly loginId: string;
  /** Work e-mail; usually equal to the login ID, deliberately not always. */
  readonly email: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly displayName: string;
  readonly employeeNumber: string;
  readonly externalId: string;
  readonly timezone: string;
  readonly preferredLanguage: string;
  readonly currencyCode: string;
  readonly country: string;
  readonly countrySubdivision: string | null;
  readonly policyId: string;
  /** The user's expense approver (index into the directory), or null at the top of the chain. */
  readonly managerIndex: number | null;
  readonly isApprover: boolean;
  readonly createdMs: number;
}

export interface DirectoryOptions {
  readonly approvers: number;
  readonly employees: number;
  /** Share of users whose work e-mail differs from their login ID. */
  readonly emailDiffersFromLoginRate: number;
  readonly nowMs: number;
  readonly policyIds: readonly string[];
}

const FIRST_NAMES = [
  'Ada',
  'Alan',
  'Amara',
  'Ana',
  'Ben',
  'Carla',
  'Chen',
  'Dana',
  'Diego',
  'Elif',
  'Emma',
  'Farid',
  'Grace',
  'Hana',
  'Ivan',
  'Jamal',
  'Jin',
  'Karin',
  'Lars',
  'Leila',
  'Luca',
  'Maya',
  'Mei',
  'Nadia',
  'Noah',
  'Olga',
  'Omar',
  'Priya',
  'Quinn',
  'Rafael',
  'Rosa',
  'Sami',
  'Sofia',
  'Tariq',
  'Tomas',
  'Uma',
  'Vera',
  'Wei',
  'Yara',
  'Zoe',
];
const LAST_NAMES = [
  'Abbott',
  'Berg',
  'Castro',
  'Dubois',
  'Eriksen',
  'Fischer',
  'Garcia',
  'Hoffman',
  'Ito',
  'Jensen',
  'Kowalski',
  'Lindqvist',
  'Moreau',
  'Nakamura',
  'Okafor',
  'Petrov',
  'Quintero',
  'Rossi',
  'Schmidt',
  'Tanaka',
  'Ueda',
  'Vargas',
  'Weber',
  'Xu',
  'Yilmaz',
  'Zhang',
  'OBrien',
  'Silva',
  'Novak',
  'Haddad',
];
const TIMEZONES = ['America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Europe/Berlin', 'Europe/London', 'America/Vancouver'];

interface Locale {
  readonly currencyCode: string;
  readonly country: string;
  readonly subdivisions: readonly (string | null)[];
  readonly language: string;
}
const LOCALES: readonly Locale[] = [
  { currencyCode: 'USD', country: 'US', subdivisions: ['US-WA', 'US-NY', 'US-CA', 'US-TX', 'US-IL'], language: 'en-US' },
  { currencyCode: 'CAD', country: 'CA', subdivisions: ['CA-BC', 'CA-ON'], language: 'en-CA' },
  { currencyCode: 'EUR', country: 'DE', subdivisions: ['DE-BE', 'DE-BY', null], language: 'de-DE' },
  { currencyCode: 'GBP', country: 'GB', subdivisions: [null], language: 'en-GB' },
];
const LOCALE_WEIGHTS = [70, 10, 12, 8];

/** The seeded company's users, with lookups by index, UUID, login and e-mail (case-insensitive). */
export class SandboxDirectory {
  readonly users: readonly SandboxUser[];
  private readonly byLogin = new Map<string, SandboxUser>();
  private readonly byId = new Map<string, SandboxUser>();
  private readonly byEmail = new Map<string, SandboxUser>();

  private constructor(users: SandboxUser[]) {
    this.users = users;
    for (const u of users) {
      this.byLogin.set(u.loginId.toLowerCase(), u);
      this.byId.set(u.id.toLowerCase(), u);
      this.byEmail.set(u.email.toLowerCase(), u);
    }
  }

  /**
   * Approvers come first; approver i reports to approver i+1 (the last one to nobody), and every
   * employee reports to one of the approvers, so every employee has an approver.
   */
  static generate(rng: SeededRandom, options: DirectoryOptions): SandboxDirectory {
    const total = options.approvers + options.employees;
    const usedLogins = new Set<string>();
    const usedEmails = new Set<string>();
    const unique = (used: Set<string>, local: string, domain: string): string => {
      let candidate = `${local}@${domain}`;
      for (let n = 2; used.has(candidate); n++) candidate = `${local}${n}@${domain}`;
      used.add(candidate);
      return candidate;
    };
    const users: SandboxUser[] = [];
    for (let index = 0; index < total; index++) {
      const isApprover = index < options.approvers;
      const givenName = rng.pick(FIRST_NAMES);
      const familyName = rng.pick(LAST_NAMES);
      const local = `${givenName}.${familyName}`.toLowerCase();
      const loginId = unique(usedLogins, local, 'example.test');
      const email = rng.chance(options.emailDiffersFromLoginRate)
        ? unique(usedEmails, `${givenName.charAt(0)}${familyName}`.toLowerCase(), 'mail.example.test')
        : (usedEmails.add(loginId), loginId);
      const locale = rng.weighted(LOCALES, LOCALE_WEIGHTS);
      const managerIndex = isApprover ? (index + 1 < options.approvers ? index + 1 : null) : rng.int(0, options.approvers - 1);
      users.push({
        index,
        id: rng.uuid(),
        loginId,
        email,
        givenName,
        familyName,
        displayName: `${givenName} ${familyName}`,
        employeeNumber: `E${String(10000 + index)}`,
        externalId: `ext-${String(10000 + index)}`,
        timezone: rng.pick(TIMEZONES),
        preferredLanguage: locale.language,
        currencyCode: locale.currencyCode,
        country: locale.country,
        countrySubdivision: rng.pick(locale.subdivisions),
        policyId: rng.pick(options.policyIds),
        managerIndex,
        isApprover,
        createdMs: options.nowMs - rng.int(200, 2000) * 86_400_000 - rng.int(0, 86_399_999),
      });
    }
    return new SandboxDirectory(users);
  }

  get(index: number): SandboxUser {
    const user = this.users[index];
    if (!user) throw new RangeError(`no user #${index}`);
    return user;
  }

  byLoginId(login: string): SandboxUser | undefined {
    return this.byLogin.get(login.toLowerCase());
  }

  byUuid(id: string): SandboxUser | undefined {
    return this.byId.get(id.toLowerCase());
  }

  byWorkEmail(email: string): SandboxUser | undefined {
    return this.byEmail.get(email.toLowerCase());
  }

  manager(user: SandboxUser): SandboxUser | undefined {
    return user.managerIndex === null ? undefined : this.users[user.managerIndex];
  }

  approvers(): SandboxUser[] {
    return this.users.filter((u) => u.isApprover);
  }

  employees(): SandboxUser[] {
    return this.users.filter((u) => !u.isApprover);
  }
}

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** ISO-8601 with microseconds, as Identity's `meta` dates print (`2021-11-17T22:44:09.000164Z`). */
const scimTime = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');

/**
 * Identity v4 User resource with the keys of identity-v4-user.json, in its order. The enterprise
 * `manager` is filled from the user's approver here; the doc says Concur does not sync the two, so
 * clients must not treat it as the approver.
 */
export function renderScimUser(user: SandboxUser, directory: SandboxDirectory, companyId: string, location: string): Record<string, unknown> {
  const manager = directory.manager(user);
  return {
    localeOverrides: {
      preferenceEndDayViewHour: 20,
      preferenceFirstDayOfWeek: 'Sunday',
      preferenceDateFormat: 'mm/dd/yyyy',
      preferenceCurrencySymbolLocation: 'BeforeAmount',
      preferenceHourMinuteSeparator: ':',
      preferenceDistance: 'mile',
      preferenceDefaultCalView: 'month',
      preference24Hour: 'H:mm AM/PM',
      preferenceNumberFormat: '1,000.00',
      preferenceStartDayViewHour: 8,
      preferenceNegativeCurrencyFormat: null,
      preferenceNegativeNumberFormat: null,
    },
    addresses: [],
    timezone: user.timezone,
    meta: {
      resourceType: 'User',
      created: scimTime(user.createdMs),
      lastModified: scimTime(user.createdMs + 3_600_000),
      version: 4,
      location,
    },
    displayName: user.displayName,
    name: { familyName: user.familyName, givenName: user.givenName, honorificSuffix: null, familyNamePrefix: null },
    phoneNumbers: [],
    emergencyContacts: null,
    preferredLanguage: user.preferredLanguage,
    title: null,
    dateOfBirth: null,
    nickName: null,
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE, 'urn:ietf:params:scim:schemas:extension:sap:2.0:User'],
    externalId: user.externalId,
    active: true,
    id: user.id,
    emails: [{ verified: false, type: 'work', value: user.email, notifications: true }],
    userName: user.loginId,
    [ENTERPRISE]: {
      terminationDate: null,
      companyId,
      manager: manager ? { value: manager.id, displayName: manager.displayName, employeeNumber: manager.employeeNumber } : null,
      costCenter: null,
      startDate: `${new Date(user.createdMs).toISOString().slice(0, 10)}T00:00:00.000`,
      employeeNumber: user.employeeNumber,
    },
  };
}

/**
 * SCIM `attributes` / `excludedAttributes` projection (identity-search.md). `id` is always kept;
 * paths may be `attr`, `attr.sub` or `<extension urn>:attr`.
 */
export function projectScim(
  resource: Record<string, unknown>,
  attributes: readonly string[] | undefined,
  excluded: readonly string[] | undefined,
): Record<string, unknown> {
  const split = (path: string): [string, string | undefined] => {
    if (path.startsWith(`${ENTERPRISE}:`)) return [ENTERPRISE, path.slice(ENTERPRISE.length + 1)];
    const core = path.replace(/^urn:ietf:params:scim:schemas:core:2\.0:User:/, '');
    const dot = core.indexOf('.');
    return dot < 0 ? [core, undefined] : [core.slice(0, dot), core.slice(dot + 1)];
  };
  if (attributes && attributes.length > 0) {
    const out: Record<string, unknown> = {};
    for (const path of attributes) {
      const [top, sub] = split(path);
      const value = resource[top];
      if (value === undefined) continue;
      if (sub === undefined || typeof value !== 'object' || value === null || Array.isArray(value)) {
        out[top] = value;
      } else {
        const target = (out[top] ?? {}) as Record<string, unknown>;
        target[sub] = (value as Record<string, unknown>)[sub];
        out[top] = target;
      }
    }
    out['id'] = resource['id'];
    return out;
  }
  if (excluded && excluded.length > 0) {
    const out: Record<string, unknown> = { ...resource };
    for (const path of excluded) {
      const [top, sub] = split(path);
      if (top === 'id') continue;
      if (sub === undefined) delete out[top];
      else if (typeof out[top] === 'object' && out[top] !== null) {
        const copy = { ...(out[top] as Record<string, unknown>) };
        delete copy[sub];
        out[top] = copy;
      }
    }
    return out;
  }
  return resource;
}
