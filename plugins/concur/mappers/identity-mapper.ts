import { emailKey } from '../../../core/index.js';
import type { components } from '../generated/identity-v4.js';
import { JsonObject, JsonValue } from './json-reader.js';

/** Identity v4 / v4.1 `User`, as generated from openapi/concur/identity-v4.yaml. */
export type IdentityUser = components['schemas']['User'];
type Email = components['schemas']['Email'];
type EnterpriseExtension = components['schemas']['EnterpriseExtension'];

export const ENTERPRISE_EXTENSION = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** A validated Identity list (v4 `GET Users`) or search (v4.1 `POST Users/.search`) page. */
export interface IdentityUserPage {
  readonly users: readonly IdentityUser[];
  readonly totalResults?: number | undefined;
  /** v4.1 only; absent on the last page and when totalResults == itemsPerPage. */
  readonly nextCursor?: string | undefined;
}

function readEmail(o: JsonObject): Email {
  return {
    value: o.string('value'),
    type: o.optionalString('type'),
    primary: o.optionalBoolean('primary'),
    verified: o.optionalBoolean('verified'),
    notifications: o.optionalBoolean('notifications'),
  };
}

function readEnterprise(o: JsonObject): EnterpriseExtension {
  const manager = o.nullableObject('manager');
  return {
    companyId: o.optionalString('companyId'),
    employeeNumber: o.nullableString('employeeNumber'),
    manager:
      manager === undefined || manager === null
        ? manager
        : {
            value: manager.optionalString('value'),
            displayName: manager.optionalString('displayName'),
            employeeNumber: manager.optionalString('employeeNumber'),
          },
    costCenter: o.nullableString('costCenter'),
    department: o.nullableString('department'),
    division: o.nullableString('division'),
    organization: o.nullableString('organization'),
    legalEntity: o.nullableString('legalEntity'),
    startDate: o.nullableString('startDate'),
    terminationDate: o.nullableString('terminationDate'),
  };
}

function readActive(v: JsonValue): boolean | string | undefined {
  if (v.isAbsent) return undefined;
  // One identity-search.md example returns "active": "true"; the reference says boolean.
  return typeof v.value === 'string' ? v.value : v.boolean();
}

function readUser(o: JsonObject): IdentityUser {
  const name = o.nullableObject('name');
  const meta = o.optionalObject('meta');
  const enterprise = o.optionalObject(ENTERPRISE_EXTENSION);
  return {
    id: o.string('id'),
    externalId: o.nullableString('externalId'),
    userName: o.optionalString('userName'),
    displayName: o.nullableString('displayName'),
    name:
      name === undefined || name === null
        ? name
        : {
            givenName: name.nullableString('givenName'),
            familyName: name.nullableString('familyName'),
            familyNamePrefix: name.nullableString('familyNamePrefix'),
            middleName: name.nullableString('middleName'),
            honorificPrefix: name.nullableString('honorificPrefix'),
            honorificSuffix: name.nullableString('honorificSuffix'),
            formatted: name.nullableString('formatted'),
          },
    title: o.nullableString('title'),
    nickName: o.nullableString('nickName'),
    dateOfBirth: o.nullableString('dateOfBirth'),
    emails: o.optionalArray('emails')?.map((e) => readEmail(e.object())),
    active: readActive(o.get('active')),
    timezone: o.optionalString('timezone'),
    preferredLanguage: o.optionalString('preferredLanguage'),
    schemas: o.optionalArray('schemas')?.map((s) => s.string()),
    meta:
      meta === undefined
        ? undefined
        : {
            resourceType: meta.optionalString('resourceType'),
            created: meta.optionalString('created'),
            lastModified: meta.optionalString('lastModified'),
            version: meta.optionalNumber('version'),
            location: meta.optionalString('location'),
          },
    [ENTERPRISE_EXTENSION]: enterprise === undefined ? undefined : readEnterprise(enterprise),
  };
}

/**
 * Validates `GET /profile/identity/v4/Users/{id}`.
 * https://developer.concur.com/api-reference/profile/v4.identity.html
 * @throws ConcurPayloadError naming the offending field (`malformed Concur identity user: emails[0].value ...`).
 */
export function parseIdentityUser(json: unknown): IdentityUser {
  return readUser(JsonObject.root(json, 'Concur identity user'));
}

/**
 * Validates a v4 list page or a v4.1 `.search` page.
 * https://developer.concur.com/api-guides/profile/identity-search.html
 */
export function parseIdentityUserPage(json: unknown): IdentityUserPage {
  const page = JsonObject.root(json, 'Concur identity page');
  return {
    users: page.array('Resources').map((r) => readUser(r.object())),
    totalResults: page.optionalNumber('totalResults'),
    nextCursor: page.optionalString('nextCursor'),
  };
}

/** The core's e-mail key: ASCII case only, so a look-alike address (Kelvin sign for k) stays a different person. */
function normalise(email: Email): string | undefined {
  return emailKey(email.value);
}

/**
 * The user's work e-mail, as its `emailKey` (ASCII lower-cased): the first `work` address (a primary one if several), else the primary
 * address, else the first. `undefined` when the user has none (or the call projected `emails` away).
 */
export function workEmail(user: IdentityUser): string | undefined {
  const emails = (user.emails ?? []).filter((e) => normalise(e) !== undefined);
  const work = emails.filter((e) => e.type?.toLowerCase() === 'work');
  const chosen = work.find((e) => e.primary === true) ?? work[0] ?? emails.find((e) => e.primary === true) ?? emails[0];
  return chosen === undefined ? undefined : normalise(chosen);
}

/** The name to show: displayName, else "given family", else the formatted name, else the login. */
export function displayName(user: IdentityUser): string | undefined {
  const trimmed = (s: string | null | undefined): string | undefined => {
    const t = s?.trim();
    return t === undefined || t === '' ? undefined : t;
  };
  const given = trimmed(user.name?.givenName);
  const family = trimmed(user.name?.familyName);
  const joined = [given, family].filter((p) => p !== undefined).join(' ');
  return trimmed(user.displayName) ?? trimmed(joined) ?? trimmed(user.name?.formatted) ?? trimmed(user.userName);
}

/** The user's company UUID from the enterprise extension (usable as the deep link's companyUUID). */
export function companyIdOf(user: IdentityUser): string | undefined {
  const id = user[ENTERPRISE_EXTENSION]?.companyId?.trim();
  return id === undefined || id === '' ? undefined : id;
}

/**
 * The user's time zone as Identity v4 names it (`timezone`, an IANA zone such as `Europe/Berlin`),
 * or undefined when absent or blank. Not checked against the runtime's zone list: the reminder
 * scheduler falls back to the deployment's default for a zone it does not know.
 */
export function timeZoneOf(user: IdentityUser): string | undefined {
  const zone = user.timezone?.trim();
  return zone === undefined || zone === '' ? undefined : zone;
}
