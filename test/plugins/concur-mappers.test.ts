import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import createClient from 'openapi-fetch';
import type { Card } from '../../core/model/card.js';
import type { components as V3Components, paths as ExpenseV3Paths } from '../../plugins/concur/generated/expense-v3.js';
import type { paths as ExpenseV4Paths } from '../../plugins/concur/generated/expense-v4.js';
import type { paths as IdentityPaths } from '../../plugins/concur/generated/identity-v4.js';
import type { components as OAuthComponents, paths as OAuthPaths } from '../../plugins/concur/generated/oauth2.js';
import { DELEGATE_EXTENSION, delegationActive, parseExpenseDelegates } from '../../plugins/concur/mappers/delegate-mapper.js';
import { compareConcurDates, formatModifiedDateAfter, maxConcurDate, parseConcurDate } from '../../plugins/concur/mappers/concur-dates.js';
import {
  FLAG_EXCEPTIONS,
  FLAG_MISSING_RECEIPT,
  parseEntry,
  parseEntryCollection,
  summariseEntries,
  type Entry,
  type LineItem,
} from '../../plugins/concur/mappers/entry-mapper.js';
import {
  companyIdOf,
  displayName,
  parseIdentityUser,
  parseIdentityUserPage,
  timeZoneOf,
  workEmail,
  type IdentityUser,
} from '../../plugins/concur/mappers/identity-mapper.js';
import { ConcurPayloadError } from '../../plugins/concur/mappers/json-reader.js';
import {
  approvalStatusFor,
  isReportGet,
  mapReport,
  parseReport,
  parseReportCollection,
  reportDeepLink,
  type ReportMappingContext,
} from '../../plugins/concur/mappers/report-mapper.js';
import { parseTokenError, parseTokenResponse } from '../../plugins/concur/mappers/token-mapper.js';

/**
 * The Concur sample payloads, copied unchanged from SAP's public API docs (each file's source is in
 * test/fixtures/concur/README.md). Found from this file rather than from the working directory: the
 * nearest folder above it that holds test/fixtures/concur is the checkout, whether the test runs compiled
 * (dist/test/plugins) or from source (test/plugins), and wherever the checkout was cloned.
 */
const SAMPLES = concurFixtures();

function concurFixtures(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'test', 'fixtures', 'concur');
    if (existsSync(path.join(candidate, 'v3-reports-list.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`no test/fixtures/concur in any folder above ${here}`);
  }
}

/** A sample payload as parsed JSON; `unknown`, because that is what the mappers get from the wire. */
function sample(file: string): unknown {
  return JSON.parse(readFileSync(path.join(SAMPLES, file), 'utf8'));
}

/** A sample as a mutable JSON object, to derive variants from. */
function sampleObject(file: string): Record<string, unknown> {
  const value = sample(file);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${file} is not an object`);
  return { ...value };
}

function listItem(index: number): Record<string, unknown> {
  const items = sampleObject('v3-reports-list.json')['Items'];
  if (!Array.isArray(items)) throw new Error('v3-reports-list.json has no Items');
  const item: unknown = items[index];
  if (typeof item !== 'object' || item === null) throw new Error('not an object');
  return { ...item };
}

function expectThrows(fn: () => unknown, message: string | RegExp): Error {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(Error);
    if (!(err instanceof Error)) throw err;
    if (typeof message === 'string') expect(err.message).to.equal(message);
    else expect(err.message).to.match(message);
    return err;
  }
  throw new Error(`expected an error matching ${String(message)}`);
}

/** Type-checks `fn` without running it: for calls that would need a server. */
function typeOnly(_fn: () => void): void {}

const CTX: ReportMappingContext = {
  source: 'concur-acme',
  companyId: 'ae4a796a-68da-4b80-b508-36022e2bacef',
  webHost: 'www.concursolutions.com',
  pendingCodes: ['A_PEND'],
};

describe('Concur mappers', () => {
  describe('parseConcurDate and friends', () => {
    it('reads zone-less Concur date-times as UTC, whatever the number of fraction digits', () => {
      expect(parseConcurDate('2013-09-02T19:18:35.537').toISOString()).to.equal('2013-09-02T19:18:35.537Z');
      expect(parseConcurDate('2013-09-02T19:46:01.57').toISOString()).to.equal('2013-09-02T19:46:01.570Z');
      expect(parseConcurDate('2016-04-23T02:53:23.7').toISOString()).to.equal('2016-04-23T02:53:23.700Z');
      expect(parseConcurDate('2016-04-04T00:00:00').toISOString()).to.equal('2016-04-04T00:00:00.000Z');
      expect(parseConcurDate('2016-04-04').toISOString()).to.equal('2016-04-04T00:00:00.000Z');
    });

    it('applies an assumed offset to zone-less values only', () => {
      expect(parseConcurDate('2016-04-04T10:00:00', { assumeOffsetMinutes: -300 }).toISOString()).to.equal('2016-04-04T15:00:00.000Z');
      expect(parseConcurDate('2023-04-10T21:54:16.661Z', { assumeOffsetMinutes: -300 }).toISOString()).to.equal('2023-04-10T21:54:16.661Z');
      expect(parseConcurDate('2022-08-26T16:13:17.230+02:00').toISOString()).to.equal('2022-08-26T14:13:17.230Z');
    });

    it('rejects values that are not Concur dates', () => {
      for (const bad of ['', '2016-4-4', '2016-02-30', '2016-04-04T24:00:00', '04/04/2016', '2016-04-04T10:00:00.']) {
        expectThrows(() => parseConcurDate(bad), /not a Concur date-time/);
      }
    });

    it('compares raw values to the nanosecond without losing the raw string', () => {
      expect(compareConcurDates('2013-09-02T19:46:01.57', '2013-09-02T19:46:01.570')).to.equal(0);
      expect(compareConcurDates('2013-09-02T19:46:01.98', '2013-09-02T19:46:01.9801')).to.equal(-1);
      expect(compareConcurDates('2016-04-04', '2016-04-03T23:59:59.999')).to.equal(1);
      expect(maxConcurDate('2013-09-02T19:46:01.98', null, '2016-04-23T02:53:23.7', undefined)).to.equal('2016-04-23T02:53:23.7');
      expect(maxConcurDate('2013-09-02T19:46:01.57', '2013-09-02T19:46:01.570')).to.equal('2013-09-02T19:46:01.57');
      expect(maxConcurDate()).to.equal(undefined);
      expectThrows(() => maxConcurDate('2016-04-23T02:53:23.7', 'yesterday'), /not a Concur date-time: "yesterday"/);
    });

    it("formats modifiedDateAfter as yyyy-MM-ddTHH:mm:ss.SSS minus the overlap, in Concur's own wall clock", () => {
      expect(formatModifiedDateAfter('2013-09-02T19:46:01.98', 0)).to.equal('2013-09-02T19:46:01.980');
      expect(formatModifiedDateAfter('2013-09-02T19:46:01.98', 60)).to.equal('2013-09-02T19:45:01.980');
      expect(formatModifiedDateAfter('2016-01-01T00:00:30', 120)).to.equal('2015-12-31T23:58:30.000');
      expect(formatModifiedDateAfter('2016-04-04', 1)).to.equal('2016-04-03T23:59:59.000');
      expect(formatModifiedDateAfter('2013-09-02T19:46:01.9809999', 0)).to.equal('2013-09-02T19:46:01.980');
      expectThrows(() => formatModifiedDateAfter('2016-04-04', -1), /overlapSeconds/);
    });
  });

  describe('mapReport', () => {
    it('maps the approved report of v3-reports-list.json to an approved approval with no approvers', () => {
      const page = parseReportCollection(sample('v3-reports-list.json'));
      expect(page.Items).to.have.length(1);
      expect(page.NextPage).to.equal(null);
      const report = page.Items[0];
      if (report === undefined) throw new Error('no item');

      const approval = mapReport(report, CTX);
      expect(approval).to.deep.include({
        key: 'concur-acme:expense-report:F4F027007E814C1CA70E',
        source: 'concur-acme',
        kind: 'expense-report',
        externalId: 'F4F027007E814C1CA70E',
        title: 'Canadian Tax',
        status: 'approved',
        approvers: [],
        amount: { value: '1900.00', currency: 'CAD' },
        submittedAt: '2013-09-02T19:18:35.537Z',
        sourceUpdatedAt: '2013-09-02T19:46:01.980Z',
      });
      expect(approval.requester).to.deep.equal({ name: 'Canadian Traveler', email: 'catraveler@concurconnect2.com' });
      expect(approval.content).to.deep.equal({ flags: [] });
      expect(approval.sourceData).to.deep.equal({
        reportId: 'F4F027007E814C1CA70E',
        lastModifiedDate: '2013-09-02T19:46:01.98',
        approvalStatusCode: 'A_APPR',
        hasException: false,
        receiptsReceived: false,
        everSentBack: false,
        lastComment: null,
        paymentStatusCode: 'P_PAID',
      });
    });

    it('builds the deep link exactly as the Concur deep-link guide documents it', () => {
      const report = parseReportCollection(sample('v3-reports-list.json')).Items[0];
      if (report === undefined) throw new Error('no item');
      expect(mapReport(report, CTX).links.view).to.equal(
        'https://www.concursolutions.com/goto/expense-report/F4F027007E814C1CA70E?companyUUID=ae4a796a-68da-4b80-b508-36022e2bacef&context=MANAGER',
      );
    });

    it('leaves companyUUID out of the deep link when the company is unknown, and URL-encodes the parts', () => {
      expect(reportDeepLink('F4F027007E814C1CA70E', 'www.concursolutions.com')).to.equal(
        'https://www.concursolutions.com/goto/expense-report/F4F027007E814C1CA70E?context=MANAGER',
      );
      expect(reportDeepLink('A/B C', 'eu1.concursolutions.com', 'x&y=z')).to.equal(
        'https://eu1.concursolutions.com/goto/expense-report/A%2FB%20C?companyUUID=x%26y%3Dz&context=MANAGER',
      );
      expectThrows(() => reportDeepLink('X', 'https://www.concursolutions.com/'), /webHost must be a bare host name/);
    });

    it('maps the unsubmitted report of v3-report.json', () => {
      const report = parseReport(sample('v3-report.json'));
      const approval = mapReport(report, { ...CTX, companyId: undefined });
      expect(approval.status).to.equal('recalled');
      expect(approval.submittedAt).to.equal(null);
      expect(approval.amount).to.deep.equal({ value: '307.01', currency: 'USD' });
      expect(approval.sourceUpdatedAt).to.equal('2016-04-23T02:53:23.700Z');
      expect(approval.approvers).to.deep.equal([]);
      expect(approval.sourceData).to.deep.include({ hasException: true, approvalStatusCode: 'A_NOTF' });
      expect(approval.content).to.deep.equal({ flags: [FLAG_EXCEPTIONS] });
      expect(approval.links.view).to.equal('https://www.concursolutions.com/goto/expense-report/39BD9F7C5C3F4986A6A5?context=MANAGER');
    });

    it('maps a report pending manager approval to a pending approval with its approver', () => {
      const pending = {
        ...sampleObject('v3-report.json'),
        ApprovalStatusCode: 'A_PEND',
        ApprovalStatusName: 'Submitted & Pending Approval',
        SubmitDate: '2016-04-23T02:50:00.123',
        ApproverLoginID: 'pat.manager@concurconnect2.com',
        ApproverName: 'Pat Manager',
      };
      const approval = mapReport(parseReport(pending), CTX);
      expect(approval.status).to.equal('pending');
      expect(approval.approvers).to.deep.equal([{ sourceUserId: 'pat.manager@concurconnect2.com', name: 'Pat Manager' }]);
      expect(approval.submittedAt).to.equal('2016-04-23T02:50:00.123Z');
      expect(approval.requester).to.deep.equal({ name: 'Jim Admin', email: 'jimadmin@concurconnect2.com' });
    });

    it("puts the entries summary's lines and flags where the card renderer reads them", () => {
      const summary = summariseEntries([parseEntry(sample('v3-entry.historical.json'))], 'USD');
      const approval = mapReport(parseReport(sample('v3-report.json')), CTX, summary);
      expect(approval.content?.lineItems).to.deep.equal(summary.lines);
      expect(approval.content?.flags).to.deep.equal([FLAG_EXCEPTIONS, FLAG_MISSING_RECEIPT]);
      expect(approval.sourceData, 'nothing shown kept in the source data').to.not.have.any.keys('lineItems', 'flags', 'fields');
    });

    it('tells what each status code means for the approvers of the configured pending codes', () => {
      const pend = ['A_PEND'];
      expect(approvalStatusFor('A_PEND', pend)).to.equal('pending');
      expect(approvalStatusFor('A_APPR', pend)).to.equal('approved');
      expect(approvalStatusFor('A_ACCO', pend)).to.equal('approved');
      expect(approvalStatusFor('A_PECO', pend)).to.equal('approved');
      expect(approvalStatusFor('A_PECO', ['A_PEND', 'A_PECO'])).to.equal('pending');
      expect(approvalStatusFor('A_RESU', pend)).to.equal('sent_back');
      expect(approvalStatusFor('A_NOTF', pend)).to.equal('recalled');
      expect(approvalStatusFor('A_TEXP', pend)).to.equal('expired');
      expect(approvalStatusFor('A_FILE', pend)).to.equal('no_longer_required');
      expect(approvalStatusFor('X_CUSTOM', pend)).to.equal('no_longer_required');
    });

    it("does not take a login ID that is not an e-mail for the requester's e-mail", () => {
      const report = parseReport({ ...sampleObject('v3-report.json'), OwnerLoginID: 'jimadmin' });
      expect(mapReport(report, CTX).requester).to.deep.equal({ name: 'Jim Admin', email: undefined });
    });

    it("uses the currency's own number of decimals", () => {
      const report = parseReport({ ...sampleObject('v3-report.json'), Total: 1500, CurrencyCode: 'JPY' });
      expect(mapReport(report, CTX).amount).to.deep.equal({ value: '1500', currency: 'JPY' });
    });

    it('keeps NextPage from a page that has one', () => {
      const page = parseReportCollection({ Items: [], NextPage: 'https://www.concursolutions.com/api/v3.0/expense/reports?offset=abc' });
      expect(page.NextPage).to.equal('https://www.concursolutions.com/api/v3.0/expense/reports?offset=abc');
    });

    it('rejects a page whose item has a non-string LastModifiedDate, naming the item and the field', () => {
      const items = [listItem(0), listItem(0), listItem(0), { ...listItem(0), LastModifiedDate: 20130902 }];
      const err = expectThrows(
        () => parseReportCollection({ Items: items }),
        'malformed Concur reports page: Items[3].LastModifiedDate is not a string (got a number)',
      );
      expect(err).to.be.instanceOf(ConcurPayloadError);
    });

    it('rejects malformed pages and reports with a message naming what is wrong', () => {
      expectThrows(() => parseReportCollection([]), 'malformed Concur reports page: the body is not an object (got an array)');
      expectThrows(() => parseReportCollection({}), 'malformed Concur reports page: Items is missing (expected an array)');
      expectThrows(() => parseReportCollection({ Items: {} }), 'malformed Concur reports page: Items is not an array (got an object)');
      expectThrows(() => parseReportCollection({ Items: [null] }), 'malformed Concur reports page: Items[0] is not an object (got null)');
      expectThrows(() => parseReportCollection({ Items: [], NextPage: 2 }), 'malformed Concur reports page: NextPage is not a string (got a number)');
      const { ID: _dropped, ...noId } = sampleObject('v3-report.json');
      expectThrows(() => parseReport(noId), 'malformed Concur report: ID is missing (expected a string)');
      expectThrows(() => parseReport({ ...sampleObject('v3-report.json'), Total: '307.01' }), 'malformed Concur report: Total is not a number (got a string)');
      expectThrows(
        () => parseReport({ ...sampleObject('v3-report.json'), SubmitDate: 'last Tuesday' }),
        /^malformed Concur report: SubmitDate is not a Concur date-time/,
      );
      expectThrows(
        () => parseReport({ ...sampleObject('v3-report.json'), Custom3: { Type: 'Text', Value: 12 } }),
        'malformed Concur report: Custom3.Value is not a string (got a number)',
      );
    });

    it('offers a type guard over the same validation', () => {
      expect(isReportGet(sample('v3-report.json'))).to.equal(true);
      expect(isReportGet({ ...sampleObject('v3-report.json'), ApprovalStatusCode: null })).to.equal(false);
    });
  });

  describe('summariseEntries', () => {
    it('flags the historical sample entry as missing its receipt', () => {
      const entry = parseEntry(sample('v3-entry.historical.json'));
      const summary = summariseEntries([entry], 'USD');
      expect(summary).to.deep.equal({
        count: 1,
        total: { value: '100.00', currency: 'USD' },
        lines: [{ label: 'Fuel · Chevron', amount: { value: '100.00', currency: 'USD' }, flags: [FLAG_MISSING_RECEIPT] }],
        expenseTypes: [{ name: 'Fuel', count: 1 }],
        flags: [FLAG_MISSING_RECEIPT],
      });
    });

    it('keeps the five largest lines, counts expense types and sums the total without float noise', () => {
      const base = sampleObject('v3-entry.historical.json');
      const variants: Record<string, unknown>[] = [
        { PostedAmount: 0.1, ExpenseTypeName: 'Parking', VendorDescription: null, VendorListItemName: null, HasImage: true },
        { PostedAmount: 0.2, ExpenseTypeName: 'Parking', VendorDescription: 'City Garage', HasImage: true },
        { PostedAmount: 250, ExpenseTypeName: 'Hotel', VendorDescription: 'Fairmont', HasExceptions: true, HasImage: true },
        { PostedAmount: 40, ExpenseTypeName: 'Taxi', VendorDescription: 'Yellow Cab', ReceiptReceived: true },
        { PostedAmount: 100, ExpenseTypeName: 'Fuel', VendorDescription: 'Chevron' },
        { PostedAmount: 12.5, ExpenseTypeName: 'Meals', VendorDescription: 'Cafe', IsImageRequired: false },
        { PostedAmount: 40, ExpenseTypeName: 'Taxi', VendorDescription: 'Uber', HasImage: true },
      ];
      const entries: Entry[] = variants.map((v, i) => parseEntry({ ...base, ...v, ID: `E${i}` }));
      const summary = summariseEntries(entries, 'USD');

      expect(summary.count).to.equal(7);
      expect(summary.total).to.deep.equal({ value: '442.80', currency: 'USD' });
      expect(summary.lines.map((l) => l.label)).to.deep.equal(['Hotel · Fairmont', 'Fuel · Chevron', 'Taxi · Yellow Cab', 'Taxi · Uber', 'Meals · Cafe']);
      expect(summary.lines[0]?.flags).to.deep.equal([FLAG_EXCEPTIONS]);
      expect(summary.lines[2]?.flags).to.deep.equal([]);
      expect(summary.expenseTypes).to.deep.equal([
        { name: 'Parking', count: 2 },
        { name: 'Taxi', count: 2 },
        { name: 'Fuel', count: 1 },
        { name: 'Hotel', count: 1 },
        { name: 'Meals', count: 1 },
      ]);
      expect(summary.flags).to.deep.equal([FLAG_EXCEPTIONS, FLAG_MISSING_RECEIPT]);
      expect(summariseEntries(entries.slice(0, 2), 'USD').total.value).to.equal('0.30');
      expect(summariseEntries(entries.slice(0, 1), 'USD').lines[0]?.label).to.equal('Parking');
    });

    it('summarises an empty report', () => {
      expect(summariseEntries([], 'EUR')).to.deep.equal({
        count: 0,
        total: { value: '0.00', currency: 'EUR' },
        lines: [],
        expenseTypes: [],
        flags: [],
      });
    });

    it('validates an entries page, naming the entry and field that is wrong', () => {
      const entry = sampleObject('v3-entry.historical.json');
      expect(parseEntryCollection({ Items: [entry] }).Items).to.have.length(1);
      expectThrows(
        () => parseEntryCollection({ Items: [entry, { ...entry, PostedAmount: null }] }),
        'malformed Concur entries page: Items[1].PostedAmount is not a number (got null)',
      );
      expectThrows(
        () => parseEntryCollection({ Items: [{ ...entry, HasImage: 'N' }] }),
        'malformed Concur entries page: Items[0].HasImage is not a boolean (got a string)',
      );
    });
  });

  describe('identity mapper', () => {
    it('reads the work e-mail, name and company of identity-v4-user.json', () => {
      const user = parseIdentityUser(sample('identity-v4-user.json'));
      expect(workEmail(user)).to.equal('john11_17_1@sap.com');
      expect(displayName(user)).to.equal('John Doe');
      expect(companyIdOf(user)).to.equal('aa076ada-80a9-4f57-8e98-9300b1c3171d');
    });

    it('reads the time zone of identity-v4-user.json, and none from a blank or absent one', () => {
      expect(timeZoneOf(parseIdentityUser(sample('identity-v4-user.json')))).to.equal('America/New_York');
      expect(timeZoneOf({ id: 'u', timezone: '  ' })).to.equal(undefined);
      expect(timeZoneOf({ id: 'u' })).to.equal(undefined);
    });

    it('reads the e-mail of the user found by identity-v4.1-search-by-email.json', () => {
      const page = parseIdentityUserPage(sample('identity-v4.1-search-by-email.json'));
      expect(page.totalResults).to.equal(1);
      expect(page.nextCursor).to.equal(undefined);
      const user = page.users[0];
      if (user === undefined) throw new Error('no user');
      expect(user.id).to.equal('f3a49682-5d15-4ed0-9fa1-d834f87ea16e');
      expect(workEmail(user)).to.equal('john.doe@sap.com');
      expect(displayName(user)).to.equal(undefined);
    });

    it('prefers a work address, then the primary one, then the first', () => {
      const user = (emails: IdentityUser['emails']): IdentityUser => ({ id: 'u', emails });
      expect(
        workEmail(
          user([
            { value: 'Home@X.example', type: 'home', primary: true },
            { value: ' Work@X.example ', type: 'work' },
          ]),
        ),
      ).to.equal('work@x.example');
      expect(
        workEmail(
          user([
            { value: 'a@x.example', type: 'work' },
            { value: 'b@x.example', type: 'work', primary: true },
          ]),
        ),
      ).to.equal('b@x.example');
      expect(
        workEmail(
          user([
            { value: 'other@x.example', type: 'other' },
            { value: 'home@x.example', type: 'home', primary: true },
          ]),
        ),
      ).to.equal('home@x.example');
      expect(workEmail(user([{ value: 'first@x.example', type: 'other' }, { value: 'second@x.example' }]))).to.equal('first@x.example');
      expect(workEmail(user([]))).to.equal(undefined);
      expect(workEmail({ id: 'u' })).to.equal(undefined);
    });

    it('falls back from displayName to the given and family names, then to the login', () => {
      expect(displayName({ id: 'u', displayName: ' ', name: { givenName: 'Ada', familyName: 'Lovelace' } })).to.equal('Ada Lovelace');
      expect(displayName({ id: 'u', userName: 'ada@x.example' })).to.equal('ada@x.example');
    });

    it('rejects a malformed user, naming the field', () => {
      expectThrows(
        () => parseIdentityUser({ ...sampleObject('identity-v4-user.json'), emails: [{ type: 'work' }] }),
        'malformed Concur identity user: emails[0].value is missing (expected a string)',
      );
      expectThrows(
        () => parseIdentityUserPage({ Resources: [{ emails: [] }] }),
        'malformed Concur identity page: Resources[0].id is missing (expected a string)',
      );
    });
  });

  describe('Spend User delegates', () => {
    const delegate = (value: string, extra: Record<string, unknown> = {}) => ({
      canApprove: true,
      canReceiveApprovalEmail: false,
      delegate: { value, employeeNumber: '7' },
      ...extra,
    });

    it('reads expense delegates as a list or as the single object the docs table shows; none without the extension', () => {
      expect(parseExpenseDelegates({ id: 'u', [DELEGATE_EXTENSION]: { expense: [delegate('d1'), delegate('d2', { canApprove: false })] } })).to.deep.equal([
        { userId: 'd1', canApprove: true, canReceiveApprovalEmail: false },
        { userId: 'd2', canApprove: false, canReceiveApprovalEmail: false },
      ]);
      const window = { temporaryDelegation: { temporaryDelegationFromDate: '2026-01-01T00:00:00Z', temporaryDelegationToDate: null } };
      expect(parseExpenseDelegates({ id: 'u', [DELEGATE_EXTENSION]: { expense: delegate('d1', window) } })).to.deep.equal([
        { userId: 'd1', canApprove: true, canReceiveApprovalEmail: false, from: '2026-01-01T00:00:00Z' },
      ]);
      expect(parseExpenseDelegates({ id: 'u', [DELEGATE_EXTENSION]: {} })).to.deep.equal([]);
      expect(parseExpenseDelegates({ id: 'u' })).to.deep.equal([]);
      // An absent flag is false; a delegate without a UUID is dropped.
      expect(parseExpenseDelegates({ id: 'u', [DELEGATE_EXTENSION]: { expense: [{ delegate: { value: 'd3' } }, { delegate: {} }] } })).to.deep.equal([
        { userId: 'd3', canApprove: false, canReceiveApprovalEmail: false },
      ]);
    });

    it('names the field of a malformed delegate', () => {
      expect(() => parseExpenseDelegates({ id: 'u', [DELEGATE_EXTENSION]: { expense: [{ canApprove: 'yes', delegate: { value: 'd' } }] } })).to.throw(
        ConcurPayloadError,
        /canApprove/,
      );
    });

    it('holds a temporary delegation only inside its window', () => {
      const at = Date.parse('2026-03-02T09:00:00Z');
      expect(delegationActive({}, at)).to.equal(true);
      expect(delegationActive({ from: '2026-03-01T00:00:00Z', to: '2026-03-03T00:00:00Z' }, at)).to.equal(true);
      expect(delegationActive({ to: '2026-03-01T00:00:00Z' }, at)).to.equal(false);
      expect(delegationActive({ from: '2026-03-03T00:00:00Z' }, at)).to.equal(false);
    });
  });

  describe('parseTokenResponse', () => {
    it('accepts expires_in as a string (oauth-token.json)', () => {
      const token = parseTokenResponse(sample('oauth-token.json'));
      expect(token).to.deep.include({
        accessToken: 'access_token',
        refreshToken: 'refresh_token',
        expiresInSeconds: 3600,
        geolocation: 'https://us.api.concursolutions.com',
        idToken: 'oidc_token',
        refreshExpiresAt: undefined,
      });
    });

    it('accepts expires_in as a number and refresh_expires_in as epoch seconds (TMC guide sample)', () => {
      const token = parseTokenResponse(sample('oauth-token-company-tmc-guide.json'));
      expect(token.expiresInSeconds).to.equal(3600);
      expect(token.refreshToken).to.equal('a95caa0f-249a…');
      expect(token.refreshExpiresAt?.toISOString()).to.equal(new Date(1517039403 * 1000).toISOString());
      expect(token.geolocation).to.equal('https://us.api.concursolutions.com');
    });

    it('accepts a client-credentials token with no refresh token', () => {
      const token = parseTokenResponse(sample('oauth-token-client-credentials.json'));
      expect(token.refreshToken).to.equal(undefined);
      expect(token.expiresInSeconds).to.equal(3600);
    });

    it('reads a small refresh_expires_in as a lifetime from now', () => {
      const token = parseTokenResponse({ ...sampleObject('oauth-token.json'), refresh_expires_in: '15552000' }, { nowMs: 0 });
      expect(token.refreshExpiresAt?.getTime()).to.equal(15_552_000_000);
    });

    it('names the malformed field and never the token values', () => {
      const secret = { ...sampleObject('oauth-token.json'), access_token: 'SECRET-ACCESS', refresh_token: 'SECRET-REFRESH' };
      const cases: [Record<string, unknown>, string][] = [
        [{ ...secret, expires_in: 'soon' }, 'malformed Concur token response: expires_in is not a number of seconds'],
        [{ ...secret, expires_in: undefined }, 'malformed Concur token response: expires_in is missing (expected seconds)'],
        [{ ...secret, geolocation: 'us.api.concursolutions.com' }, 'malformed Concur token response: geolocation is not an https URL (http only on loopback)'],
        [{ ...secret, refresh_token: 42 }, 'malformed Concur token response: refresh_token is not a string (got a number)'],
        [{ ...secret, access_token: '' }, 'malformed Concur token response: access_token is empty'],
        [{ ...secret, refresh_expires_in: true }, 'malformed Concur token response: refresh_expires_in is not a number of seconds'],
      ];
      for (const [body, message] of cases) {
        const err = expectThrows(() => parseTokenResponse(body), message);
        expect(err.message).not.to.include('SECRET');
      }
      expectThrows(() => parseTokenResponse('access_token=x'), 'malformed Concur token response: the body is not an object (got a string)');
    });

    it('surfaces a token error body as such (oauth-token-error.json)', () => {
      expectThrows(
        () => parseTokenResponse(sample('oauth-token-error.json')),
        'Concur token endpoint returned an error instead of a token: invalid_grant (code 5): Incorrect Credentials. Please Retry',
      );
      expect(parseTokenError(sample('oauth-token-error.json'))).to.deep.equal({
        code: 5,
        error: 'invalid_grant',
        error_description: 'Incorrect Credentials. Please Retry',
        geolocation: undefined,
      });
      expect(parseTokenError(sample('oauth-token.json'))).to.equal(undefined);
    });
  });

  describe('generated types', () => {
    it('type a v3 reports call through openapi-fetch and send the query Concur documents', async () => {
      const requests: Request[] = [];
      const client = createClient<ExpenseV3Paths>({
        baseUrl: 'https://www.concursolutions.com',
        fetch: async (request: Request) => {
          requests.push(request);
          return new Response(readFileSync(path.join(SAMPLES, 'v3-reports-list.json')), {
            status: 200,
            headers: { 'content-type': 'application/json' },
          });
        },
      });
      const { data, error } = await client.GET('/api/v3.0/expense/reports', {
        params: { query: { user: 'ALL', approvalStatusCode: 'A_PEND,A_APPR', limit: 100 } },
      });
      expect(error).to.equal(undefined);
      const url = new URL(requests[0]?.url ?? '');
      expect(url.pathname).to.equal('/api/v3.0/expense/reports');
      expect(url.searchParams.get('approvalStatusCode')).to.equal('A_PEND,A_APPR');
      expect(url.searchParams.get('limit')).to.equal('100');
      // `data` is typed from the spec but is still untrusted JSON: it goes through the validating parser.
      const page = parseReportCollection(data);
      const total: number | undefined = data?.Items[0]?.Total;
      expect(total).to.equal(page.Items[0]?.Total);

      typeOnly(() => {
        // @ts-expect-error limit is an integer, not a string
        void client.GET('/api/v3.0/expense/reports', { params: { query: { limit: '100' } } });
        // @ts-expect-error the id path parameter is required
        void client.GET('/api/v3.0/expense/reports/{id}', { params: { query: { user: 'x' } } });
        // @ts-expect-error paths outside the trimmed spec do not exist
        void client.GET('/api/v3.0/expense/reports/{id}/entries', {});
        void client.GET('/api/v3.0/expense/entries', { params: { query: { reportID: 'R', limit: 100 } } });
      });
    });

    it('type the v4 approve/sendBack, identity and token calls', () => {
      const v4 = createClient<ExpenseV4Paths>({ baseUrl: 'https://us2.api.concursolutions.com' });
      const identity = createClient<IdentityPaths>({ baseUrl: 'https://us2.api.concursolutions.com' });
      const oauth = createClient<OAuthPaths>({ baseUrl: 'https://us2.api.concursolutions.com' });
      const report = { userId: 'u', contextType: 'MANAGER' as const, reportId: 'R' };
      typeOnly(() => {
        void v4.GET('/expensereports/v4/users/{userId}/context/{contextType}/reportsToApprove', {
          params: { path: { userId: 'u', contextType: 'MANAGER' }, query: { includeDelegateApprovals: true, sort: 'submitDate' } },
        });
        void v4.PATCH('/expensereports/v4/users/{userId}/context/{contextType}/reports/{reportId}/approve', {
          params: { path: report },
          body: { comment: 'ok' },
        });
        void v4.PATCH('/expensereports/v4/users/{userId}/context/{contextType}/reports/{reportId}/sendBack', {
          params: { path: report },
          // @ts-expect-error a send back needs a comment
          body: {},
        });
        void identity.POST('/profile/identity/v4.1/Users/.search', {
          body: { schemas: ['urn:ietf:params:scim:api:messages:concur:2.0:SearchRequest'], filter: 'emails.value eq "a@b.c"' },
        });
        void identity.GET('/profile/identity/v4/Users', { params: { query: { count: 100, startIndex: 1 } } });
        void oauth.POST('/oauth2/v0/token', {
          body: { grant_type: 'refresh_token', client_id: 'c', client_secret: 's', refresh_token: 'r' },
        });
      });
      // expires_in is typed as both shapes the docs use.
      const asString: OAuthComponents['schemas']['TokenResponse']['expires_in'] = '3600';
      const asNumber: OAuthComponents['schemas']['TokenResponse']['expires_in'] = 3600;
      // Concur v3 dates are plain strings (no zone), and SubmitDate may be null.
      const submit: V3Components['schemas']['ReportGet']['SubmitDate'] = null;
      // A summary line fits core's card line items.
      const line: Card['lineItems'][number] = { label: 'x', amount: { value: '1.00', currency: 'USD' }, flags: [] } satisfies LineItem;
      expect([asString, asNumber, submit, line.label]).to.deep.equal(['3600', 3600, null, 'x']);
    });
  });
});
