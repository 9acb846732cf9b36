import { expect } from 'chai';
import { callsTo } from '../../plugins/concur/sandbox/sandbox-calls.js';
import { startConcurSandbox, type ConcurSandbox, type ConcurSandboxOptions } from '../../plugins/concur/sandbox/concur-sandbox.js';
import { call, tokenRequest, type Json, type Res } from '../support/sandbox-http.js';

/**
 * The Concur sandbox over real HTTP on 127.0.0.1. Facts it must follow are in
 * docs/concur-api.md; payload shapes in test/fixtures/concur/*.json (copied from SAP's docs).
 */

/** Keys of the item in v3-reports-list.json, in order (copied from the sample). */
const V3_REPORT_KEYS = [
  'Name',
  'Total',
  'CurrencyCode',
  'Country',
  'CountrySubdivision',
  'CreateDate',
  'SubmitDate',
  'ProcessingPaymentDate',
  'PaidDate',
  'ReceiptsReceived',
  'UserDefinedDate',
  'LastComment',
  'OwnerLoginID',
  'OwnerName',
  'ApproverLoginID',
  'ApproverName',
  'ApprovalStatusName',
  'ApprovalStatusCode',
  'PaymentStatusName',
  'PaymentStatusCode',
  'LastModifiedDate',
  'PersonalAmount',
  'AmountDueEmployee',
  'AmountDueCompanyCard',
  'TotalClaimedAmount',
  'TotalApprovedAmount',
  'LedgerName',
  'PolicyID',
  'EverSentBack',
  'HasException',
  'WorkflowActionUrl',
  'OrgUnit1',
  'OrgUnit2',
  'OrgUnit3',
  'OrgUnit4',
  'OrgUnit5',
  'OrgUnit6',
  ...Array.from({ length: 20 }, (_, i) => `Custom${i + 1}`),
  'ID',
  'URI',
];

/** Keys of v3-entry.historical.json, in order. */
const V3_ENTRY_KEYS = [
  'ReportID',
  'ReportOwnerID',
  'ExpenseTypeCode',
  'ExpenseTypeName',
  'SpendCategoryCode',
  'SpendCategoryName',
  'PaymentTypeID',
  'PaymentTypeName',
  'TransactionDate',
  'TransactionCurrencyCode',
  'TransactionAmount',
  'ExchangeRate',
  'PostedAmount',
  'ApprovedAmount',
  'VendorDescription',
  'VendorListItemID',
  'VendorListItemName',
  'LocationID',
  'LocationName',
  'LocationSubdivision',
  'LocationCountry',
  'Description',
  'IsPersonal',
  'IsBillable',
  'IsPersonalCardCharge',
  'HasImage',
  'IsImageRequired',
  'ReceiptReceived',
  'TaxReceiptType',
  'ElectronicReceiptID',
  'CompanyCardTransactionID',
  'TripID',
  'HasItemizations',
  'AllocationType',
  'HasAttendees',
  'HasVAT',
  'HasAppliedCashAdvance',
  'HasComments',
  'HasExceptions',
  'IsPaidByExpensePay',
  'EmployeeBankAccountID',
  'Journey',
  'LastModified',
  'FormID',
  'OrgUnit1',
  'OrgUnit2',
  'OrgUnit3',
  'OrgUnit4',
  'OrgUnit5',
  'OrgUnit6',
  ...Array.from({ length: 40 }, (_, i) => `Custom${i + 1}`),
  'ID',
  'URI',
];

const REPORTS = '/api/v3.0/expense/reports';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Report = Json & { ID: string; ApprovalStatusCode: string; ApproverLoginID: string | null; LastModifiedDate: string };
type Page = { Items: Report[]; NextPage?: string | null };

/** A company access token via the request-token grant (reusable; leaves the refresh token alone). */
async function companyToken(sb: ConcurSandbox): Promise<string> {
  const res = await tokenRequest(sb, {
    grant_type: 'password',
    credtype: 'authtoken',
    username: sb.companyId,
    password: sb.credentials.requestToken,
  });
  expect(res.status).to.equal(200);
  return res.body['access_token'] as string;
}

async function userToken(sb: ConcurSandbox, loginId: string): Promise<string> {
  const res = await tokenRequest(sb, { grant_type: 'password', credtype: 'password', username: loginId, password: 'x' });
  expect(res.status).to.equal(200);
  return res.body['access_token'] as string;
}

const auth = (token: string, extra: Record<string, string> = {}): RequestInit => ({
  headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...extra },
});

function get<T = Json>(sb: ConcurSandbox, path: string, token: string): Promise<Res<T>> {
  return call<T>(`${sb.baseUrl}${path}`, auth(token));
}

/** Follows NextPage from `path` to the end; returns every item and every page body. */
async function listAll(sb: ConcurSandbox, path: string, token: string): Promise<{ items: Report[]; pages: Page[] }> {
  const items: Report[] = [];
  const pages: Page[] = [];
  let url: string | null | undefined = `${sb.baseUrl}${path}`;
  while (url) {
    const res: Res<Page> = await call<Page>(url, auth(token));
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    pages.push(res.body);
    items.push(...res.body.Items);
    url = res.body.NextPage;
  }
  return { items, pages };
}

const concurMs = (s: string): number => Date.parse(`${s}Z`);

async function withSandbox(options: ConcurSandboxOptions, fn: (sb: ConcurSandbox) => Promise<void>): Promise<void> {
  const sb = await startConcurSandbox(options);
  try {
    await fn(sb);
  } finally {
    await sb.close();
  }
}

describe('Concur sandbox', function () {
  describe('OAuth2 token endpoint', function () {
    let sb: ConcurSandbox;
    before(async function () {
      sb = await startConcurSandbox({ seed: 11 });
    });
    after(async function () {
      await sb.close();
    });

    it('answers a refresh grant with a rotated refresh token, a string expires_in and its own base URL as geolocation', async function () {
      const res = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: sb.credentials.refreshToken });
      expect(res.status).to.equal(200);
      expect(Object.keys(res.body)).to.deep.equal(['expires_in', 'scope', 'token_type', 'access_token', 'refresh_token', 'id_token', 'geolocation']);
      expect(res.body['expires_in']).to.equal('3600');
      expect(res.body['token_type']).to.equal('Bearer');
      expect(res.body['geolocation']).to.equal(sb.baseUrl);
      expect(res.body['refresh_token']).to.be.a('string').and.not.equal(sb.credentials.refreshToken);
    });

    it('refuses a refresh token that was already used, with code 108', async function () {
      const first = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: sb.admin.mintCompanyRefreshToken() });
      const used = first.body['refresh_token'] as string;
      const second = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: used });
      expect(second.status).to.equal(200);
      const again = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: used });
      expect(again.status).to.equal(400);
      expect(again.body).to.include({ code: 108, error: 'invalid_grant' });
      expect(again.body['error_description']).to.be.a('string');
    });

    it('keeps a used refresh token valid when rotation is configured not to invalidate', async function () {
      await withSandbox({ seed: 12, invalidateUsedRefreshTokens: false }, async (other) => {
        const token = other.credentials.refreshToken;
        const a = await tokenRequest(other, { grant_type: 'refresh_token', refresh_token: token });
        const b = await tokenRequest(other, { grant_type: 'refresh_token', refresh_token: token });
        expect([a.status, b.status]).to.deep.equal([200, 200]);
        expect(a.body['refresh_token']).to.not.equal(b.body['refresh_token']);
      });
    });

    it('issues a company token for the password grant with credtype=authtoken', async function () {
      const res = await tokenRequest(sb, {
        grant_type: 'password',
        credtype: 'authtoken',
        username: sb.companyId,
        password: sb.credentials.requestToken,
      });
      expect(res.status).to.equal(200);
      const claims = JSON.parse(Buffer.from(String(res.body['id_token']).split('.')[1] ?? '', 'base64url').toString('utf8')) as Json;
      expect(claims).to.include({ sub: sb.companyId, 'concur.type': 'company' });
      const list = await get(sb, `${REPORTS}?user=ALL`, res.body['access_token'] as string);
      expect(list.status).to.equal(200);
    });

    it('refuses a wrong request token with code 5', async function () {
      const res = await tokenRequest(sb, { grant_type: 'password', credtype: 'authtoken', username: sb.companyId, password: 'nope' });
      expect(res.status).to.equal(400);
      expect(res.body).to.include({ code: 5, error: 'invalid_grant' });
    });

    it('refuses a wrong client secret as invalid_client with 401', async function () {
      const res = await call(`${sb.baseUrl}/oauth2/v0/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: sb.credentials.clientId,
          client_secret: 'wrong',
          refresh_token: sb.admin.mintCompanyRefreshToken(),
        }).toString(),
      });
      expect(res.status).to.equal(401);
      expect(res.body).to.include({ error: 'invalid_client', code: 64 });
    });

    it('answers an API call without a token with 401 and a JSON body', async function () {
      const res = await call(`${sb.baseUrl}${REPORTS}?user=ALL`);
      expect(res.status).to.equal(401);
      expect(res.body).to.have.nested.property('Error.Message');
      expect(res.headers.get('www-authenticate')).to.match(/^Bearer/);
    });

    it('answers an API call with an unknown token with 401', async function () {
      const res = await get(sb, `${REPORTS}?user=ALL`, 'not-a-token');
      expect(res.status).to.equal(401);
      expect(res.body).to.have.nested.property('Error.Id');
    });

    it('answers 401 once an access token outlived its hour on the sandbox clock', async function () {
      await withSandbox({ seed: 13, freezeClock: true }, async (other) => {
        const token = await companyToken(other);
        expect((await get(other, `${REPORTS}?user=ALL`, token)).status).to.equal(200);
        other.admin.advanceClock(3600);
        const res = await get(other, `${REPORTS}?user=ALL`, token);
        expect(res.status).to.equal(401);
        expect(res.body).to.have.nested.property('Error.Message', 'The access token has expired');
      });
    });

    it('puts a concur-correlationid UUID on every response, errors included', async function () {
      const ok = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: sb.admin.mintCompanyRefreshToken() });
      const unauthorized = await call(`${sb.baseUrl}${REPORTS}`);
      const missing = await call(`${sb.baseUrl}/no/such/path`);
      for (const res of [ok, unauthorized, missing]) expect(res.headers.get('concur-correlationid')).to.match(UUID);
    });
  });

  describe('v3 report listing', function () {
    let sb: ConcurSandbox;
    let token: string;
    before(async function () {
      sb = await startConcurSandbox({ seed: 21, reports: 250, otherReports: 120, freezeClock: true });
      token = await companyToken(sb);
    });
    after(async function () {
      await sb.close();
    });

    it('returns reports of both statuses for approvalStatusCode=A_PEND,A_APPR and none of any other', async function () {
      const { items } = await listAll(sb, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND,A_APPR&limit=100`, token);
      const codes = new Set(items.map((r) => r.ApprovalStatusCode));
      expect([...codes].sort()).to.deep.equal(['A_APPR', 'A_PEND']);
      const truth = sb.admin.state().reports.filter((r) => r.status === 'A_PEND' || r.status === 'A_APPR');
      expect(items).to.have.length(truth.length);
    });

    it('keeps only reports modified strictly after modifiedDateAfter', async function () {
      const pending = sb.admin.state().reports.filter((r) => r.status === 'A_PEND');
      const sorted = pending.map((r) => r.lastModifiedDate).sort((a, b) => concurMs(a) - concurMs(b));
      const pivot = sorted[Math.floor(sorted.length / 2)] as string;
      const { items } = await listAll(sb, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=100&modifiedDateAfter=${encodeURIComponent(pivot)}`, token);
      const expected = pending.filter((r) => concurMs(r.lastModifiedDate) > concurMs(pivot)).map((r) => r.id);
      expect(items.map((r) => r.ID).sort()).to.deep.equal(expected.sort());
      expect(items.every((r) => concurMs(r.LastModifiedDate) > concurMs(pivot))).to.equal(true);
      expect(items.length).to.be.lessThan(pending.length / 2 + 1);
    });

    it('accepts modifiedDateAfter as a plain yyyy-MM-dd date', async function () {
      const res = await get<Page>(sb, `${REPORTS}?user=ALL&modifiedDateAfter=2000-01-01`, token);
      expect(res.status).to.equal(200);
      expect(res.body.Items).to.have.length(25);
    });

    it('refuses a modifiedDateAfter with a time zone suffix with 400 in the v3 error shape', async function () {
      const res = await get(sb, `${REPORTS}?user=ALL&modifiedDateAfter=2025-01-01T00:00:00Z`, token);
      expect(res.status).to.equal(400);
      expect(Object.keys((res.body['Error'] ?? {}) as Json)).to.deep.equal(['Message', 'Server-Time', 'Id']);
    });

    it('returns every matching report exactly once when following NextPage with limit=100', async function () {
      const { items, pages } = await listAll(sb, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=100`, token);
      const ids = items.map((r) => r.ID);
      expect(new Set(ids).size).to.equal(ids.length);
      const truth = sb.admin
        .state()
        .reports.filter((r) => r.status === 'A_PEND')
        .map((r) => r.id);
      expect([...ids].sort()).to.deep.equal([...truth].sort());
      expect(pages.map((p) => p.Items.length)).to.deep.equal([100, 100, 50]);
      expect(pages[0]?.NextPage).to.match(new RegExp(`^${sb.baseUrl}${REPORTS}\\?.*offset=`));
    });

    it('keeps paging stable when reports change between pages', async function () {
      const first = await get<Page>(sb, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=100`, token);
      const submitted = sb.admin.submit({});
      let url = first.body.NextPage;
      const ids = first.body.Items.map((r) => r.ID);
      while (url) {
        const page: Res<Page> = await call<Page>(url, auth(token));
        ids.push(...page.body.Items.map((r) => r.ID));
        url = page.body.NextPage;
      }
      expect(new Set(ids).size).to.equal(250);
      expect(ids).to.not.include(submitted.ID);
      sb.admin.delete(submitted.ID);
    });

    it('leaves out reports deleted between pages when listingConsistency is live', async function () {
      await withSandbox({ seed: 23, reports: 30, listingConsistency: 'live' }, async (other) => {
        const token2 = await companyToken(other);
        const first = await get<Page>(other, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=10`, token2);
        const seen = new Set(first.body.Items.map((r) => r.ID));
        const victim = other.admin.state().reports.find((r) => r.status === 'A_PEND' && !seen.has(r.id)) as { id: string };
        other.admin.delete(victim.id);
        const { items } = await listAll(other, new URL(first.body.NextPage as string).pathname + new URL(first.body.NextPage as string).search, token2);
        expect(items.map((r) => r.ID)).to.not.include(victim.id);
        expect(items).to.have.length(19);
      });
    });

    it('omits NextPage on the last page by default, as the documented example does', async function () {
      const res = await get<Page>(sb, `${REPORTS}?user=ALL&approvalStatusCode=A_RESU&limit=100`, token);
      expect(res.body.Items.length).to.be.greaterThan(0);
      expect(res.body).to.not.have.property('NextPage');
    });

    it('sends NextPage: null on the last page when omitNextPageWhenLast is false', async function () {
      await withSandbox({ seed: 22, reports: 5, omitNextPageWhenLast: false }, async (other) => {
        const res = await get<Page>(other, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND`, await companyToken(other));
        expect(res.body.Items).to.have.length(5);
        expect(res.body).to.have.property('NextPage', null);
      });
    });

    it('clamps limit above 100 to 100', async function () {
      const res = await get<Page>(sb, `${REPORTS}?user=ALL&limit=500`, token);
      expect(res.body.Items).to.have.length(100);
    });

    it('prints report objects with exactly the keys of the documented sample, in its order', async function () {
      const res = await get<Page>(sb, `${REPORTS}?user=ALL&limit=100`, token);
      for (const item of res.body.Items) expect(Object.keys(item)).to.deep.equal(V3_REPORT_KEYS);
      const one = res.body.Items[0] as Report;
      expect(one.ID).to.match(/^[0-9A-F]{20}$/);
      expect(one['URI']).to.equal(`${sb.baseUrl}${REPORTS}/${one.ID}`);
    });

    it('prints dates without a time zone and with trailing zeros of the milliseconds trimmed', async function () {
      const { items } = await listAll(sb, `${REPORTS}?user=ALL&limit=100`, token);
      const dates = items.map((r) => r.LastModifiedDate);
      for (const d of dates) expect(d).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,2}[1-9])?$/);
      expect(dates.some((d) => d.includes('.'))).to.equal(true);
      expect(dates.some((d) => !d.includes('.'))).to.equal(true);
    });

    it('returns items in no particular order, reproducibly for a seed', async function () {
      const order = async (seed: number): Promise<string[]> => {
        let ids: string[] = [];
        await withSandbox({ seed, reports: 30 }, async (other) => {
          ids = (await get<Page>(other, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=100`, await companyToken(other))).body.Items.map((r) => r.ID);
        });
        return ids;
      };
      const a = await order(5);
      const b = await order(5);
      expect(a).to.deep.equal(b);
      expect(a).to.not.deep.equal([...a].sort());
    });

    it('filters by approverLoginID', async function () {
      const approver = sb.admin.state().reports.find((r) => r.status === 'A_PEND')?.approverLoginID as string;
      const { items } = await listAll(sb, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=100&approverLoginID=${approver}`, token);
      expect(items.length).to.be.greaterThan(0);
      expect(items.every((r) => r.ApproverLoginID === approver)).to.equal(true);
    });

    it('returns nothing for a company token that omits user=ALL', async function () {
      const res = await get<Page>(sb, REPORTS, token);
      expect(res.status).to.equal(200);
      expect(res.body.Items).to.deep.equal([]);
    });
  });

  describe('admin API and the state machine', function () {
    let sb: ConcurSandbox;
    let token: string;
    before(async function () {
      sb = await startConcurSandbox({ seed: 31, reports: 10, freezeClock: true });
      token = await companyToken(sb);
    });
    after(async function () {
      await sb.close();
    });

    const pendingIds = async (): Promise<string[]> =>
      (await listAll(sb, `${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=100`, token)).items.map((r) => r.ID);
    const stateOf = (id: string) => sb.admin.state().reports.find((r) => r.id === id);

    it('submit adds a pending report to state() and to the listing', async function () {
      const report = sb.admin.submit({ name: 'Offsite catering', total: 123.45 });
      expect(report.ApprovalStatusCode).to.equal('A_PEND');
      expect(stateOf(report.ID)).to.include({ status: 'A_PEND', name: 'Offsite catering', total: 123.45 });
      expect(await pendingIds()).to.include(report.ID);
    });

    it('approve moves a report to A_APPR, clears its approver and drops it from the pending listing', async function () {
      const { ID } = sb.admin.submit({});
      sb.admin.approve(ID);
      expect(stateOf(ID)).to.include({ status: 'A_APPR', approverLoginID: null });
      expect(await pendingIds()).to.not.include(ID);
    });

    it('approve forwards to the next manager while approvals are still needed', async function () {
      await withSandbox({ seed: 32, reports: 3, approvalLevels: 2 }, async (other) => {
        const users = other.admin.users();
        const approver = users.find((u) => u.isApprover && u.managerLoginId !== null);
        const owner = users.find((u) => !u.isApprover) as { loginId: string };
        const { ID } = other.admin.submit({ owner: owner.loginId, approver: approver?.loginId as string });
        const after = other.admin.approve(ID);
        expect(after.ApprovalStatusCode).to.equal('A_PEND');
        expect(after.ApproverLoginID).to.equal(approver?.managerLoginId);
        expect(other.admin.approve(ID).ApprovalStatusCode).to.equal('A_APPR');
      });
    });

    it('sendBack moves a report to A_RESU with the comment and EverSentBack', async function () {
      const { ID } = sb.admin.submit({});
      const report = sb.admin.sendBack(ID, 'Missing receipt');
      expect(report).to.include({ ApprovalStatusCode: 'A_RESU', ApproverLoginID: null, LastComment: 'Missing receipt', EverSentBack: true });
      expect(await pendingIds()).to.not.include(ID);
    });

    it('recall moves a report to A_RESU', async function () {
      const { ID } = sb.admin.submit({});
      sb.admin.recall(ID);
      expect(stateOf(ID)).to.include({ status: 'A_RESU', approverLoginID: null });
    });

    it('resubmit brings a sent-back report back to A_PEND', async function () {
      const { ID } = sb.admin.submit({});
      sb.admin.sendBack(ID, 'fix it');
      expect(sb.admin.resubmit(ID).ApprovalStatusCode).to.equal('A_PEND');
    });

    it('reassign changes the approver in state() and in the approverLoginID listing', async function () {
      const { ID, ApproverLoginID } = sb.admin.submit({});
      const other = sb.admin.users().find((u) => u.isApprover && u.loginId !== ApproverLoginID) as { loginId: string };
      sb.admin.reassign(ID, other.loginId);
      expect(stateOf(ID)).to.include({ status: 'A_PEND', approverLoginID: other.loginId });
      const { items } = await listAll(sb, `${REPORTS}?user=ALL&limit=100&approverLoginID=${other.loginId}`, token);
      expect(items.map((r) => r.ID)).to.include(ID);
    });

    it('edit changes the header and bumps LastModifiedDate', async function () {
      const { ID, LastModifiedDate } = sb.admin.submit({});
      sb.admin.advanceClock(5);
      const edited = sb.admin.edit(ID, { name: 'Renamed', total: 10 });
      expect(edited).to.include({ Name: 'Renamed', Total: 10 });
      expect(concurMs(edited.LastModifiedDate) - concurMs(LastModifiedDate)).to.be.closeTo(5000, 2);
    });

    it('delete removes a report from state() and the listing', async function () {
      const { ID } = sb.admin.submit({});
      sb.admin.delete(ID);
      expect(stateOf(ID)).to.equal(undefined);
      expect(await pendingIds()).to.not.include(ID);
    });

    it('refuses to approve a report that is not pending', async function () {
      const { ID } = sb.admin.submit({});
      sb.admin.approve(ID);
      expect(() => sb.admin.approve(ID)).to.throw(/not pending/);
    });

    it('bumps LastModifiedDate on approve by default', async function () {
      const { ID, LastModifiedDate } = sb.admin.submit({});
      sb.admin.advanceClock(60);
      expect(sb.admin.approve(ID).LastModifiedDate).to.not.equal(LastModifiedDate);
    });

    it('leaves LastModifiedDate alone on approve when workflowBumpsLastModified is false', async function () {
      await withSandbox({ seed: 33, reports: 3, workflowBumpsLastModified: false, freezeClock: true }, async (other) => {
        const { ID, LastModifiedDate } = other.admin.submit({});
        other.admin.advanceClock(60);
        const approved = other.admin.approve(ID);
        expect(approved.ApprovalStatusCode).to.equal('A_APPR');
        expect(approved.LastModifiedDate).to.equal(LastModifiedDate);
        const viaApi = await get<Report>(other, `${REPORTS}/${ID}`, await companyToken(other));
        expect(viaApi.body.LastModifiedDate).to.equal(LastModifiedDate);
      });
    });

    it('serves the same operations over HTTP under /_admin without counting them as Concur calls', async function () {
      sb.resetCalls();
      const created = await call<Report>(`${sb.baseUrl}/_admin/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Via HTTP' }),
      });
      expect(created.status).to.equal(201);
      const approved = await call<Report>(`${sb.baseUrl}/_admin/reports/${created.body.ID}/approve`, { method: 'POST' });
      expect(approved.body.ApprovalStatusCode).to.equal('A_APPR');
      const advanced = await call(`${sb.baseUrl}/_admin/clock/advance`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seconds: 10 }),
      });
      expect(advanced.body['now']).to.equal(sb.admin.state().now);
      const state = await call<{ reports: { id: string; status: string }[] }>(`${sb.baseUrl}/_admin/state`);
      expect(state.body.reports.find((r) => r.id === created.body.ID)?.status).to.equal('A_APPR');
      expect(sb.calls().total).to.equal(0);
    });

    it('answers an unknown report on /_admin with 404', async function () {
      const res = await call(`${sb.baseUrl}/_admin/reports/NOPE/approve`, { method: 'POST' });
      expect(res.status).to.equal(404);
    });
  });

  describe('v3 report by ID and entries', function () {
    let sb: ConcurSandbox;
    let token: string;
    before(async function () {
      sb = await startConcurSandbox({ seed: 41, reports: 10 });
      token = await companyToken(sb);
    });
    after(async function () {
      await sb.close();
    });

    it('returns one report to the company token without a user parameter', async function () {
      const { ID } = sb.admin.submit({});
      const res = await get<Report>(sb, `${REPORTS}/${ID}`, token);
      expect(res.status).to.equal(200);
      expect(res.body.ID).to.equal(ID);
      expect(Object.keys(res.body)).to.deep.equal(V3_REPORT_KEYS);
    });

    it('answers 404 in the v3 error shape after the report was deleted', async function () {
      const { ID } = sb.admin.submit({});
      sb.admin.delete(ID);
      const res = await get(sb, `${REPORTS}/${ID}`, token);
      expect(res.status).to.equal(404);
      expect(Object.keys(res.body)).to.deep.equal(['Error']);
      expect(Object.keys(res.body['Error'] as Json)).to.deep.equal(['Message', 'Server-Time', 'Id']);
    });

    it('refuses user=ALL on a single report with 400', async function () {
      const { ID } = sb.admin.submit({});
      const res = await get(sb, `${REPORTS}/${ID}?user=ALL`, token);
      expect(res.status).to.equal(400);
      expect(res.body).to.have.nested.property('Error.Message');
    });

    it('lists a report’s entries with the keys of the historical sample, paged by NextPage', async function () {
      const { ID, Total } = sb.admin.submit({ entries: 5 });
      const first = await get<{ Items: Json[]; NextPage?: string }>(sb, `/api/v3.0/expense/entries?reportID=${ID}&limit=2`, token);
      expect(first.body.Items).to.have.length(2);
      const items = [...first.body.Items];
      let url = first.body.NextPage;
      while (url) {
        const page: Res<{ Items: Json[]; NextPage?: string }> = await call(url, auth(token));
        items.push(...page.body.Items);
        url = page.body.NextPage;
      }
      expect(items).to.have.length(5);
      for (const e of items) expect(Object.keys(e)).to.deep.equal(V3_ENTRY_KEYS);
      const sum = items.reduce((s, e) => s + Math.round((e['PostedAmount'] as number) * 100), 0);
      expect(sum / 100).to.equal(Total);
      expect(new Set(items.map((e) => e['ID'])).size).to.equal(5);
    });

    it('returns the same entries for a report on every call', async function () {
      const { ID } = sb.admin.submit({ entries: 3 });
      const a = await get<{ Items: Json[] }>(sb, `/api/v3.0/expense/entries?reportID=${ID}`, token);
      const b = await get<{ Items: Json[] }>(sb, `/api/v3.0/expense/entries?reportID=${ID}`, token);
      expect(a.body.Items).to.deep.equal(b.body.Items);
    });
  });

  describe('Identity v4 and v4.1', function () {
    let sb: ConcurSandbox;
    let token: string;
    before(async function () {
      sb = await startConcurSandbox({ seed: 51, approvers: 5, employees: 40 });
      token = await companyToken(sb);
    });
    after(async function () {
      await sb.close();
    });

    type ListResponse = { schemas: string[]; totalResults: number; startIndex: number; itemsPerPage: number; Resources: Json[]; nextCursor?: string };

    it('filters v4 Users by userName', async function () {
      const user = sb.admin.users()[7] as { loginId: string; id: string };
      const filter = encodeURIComponent(`userName eq "${user.loginId.toUpperCase()}"`);
      const res = await get<ListResponse>(sb, `/profile/identity/v4/Users?filter=${filter}`, token);
      expect(res.status).to.equal(200);
      expect(res.body.schemas).to.deep.equal(['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
      expect(res.body.totalResults).to.equal(1);
      const found = res.body.Resources[0] as Json;
      expect(found['id']).to.equal(user.id);
      expect(found['userName']).to.equal(user.loginId);
      expect(found['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User']).to.have.property('companyId', sb.companyId);
      expect((found['emails'] as Json[])[0]).to.include({ type: 'work' });
    });

    it('pages the v4 Users listing with startIndex and count', async function () {
      const seen: string[] = [];
      for (let startIndex = 1; ; startIndex += 20) {
        const res = await get<ListResponse>(sb, `/profile/identity/v4/Users?startIndex=${startIndex}&count=20`, token);
        expect(res.body.totalResults).to.equal(45);
        expect(res.body.startIndex).to.equal(startIndex);
        seen.push(...res.body.Resources.map((r) => r['id'] as string));
        if (startIndex + 20 > res.body.totalResults) break;
      }
      expect(new Set(seen).size).to.equal(45);
    });

    it('defaults the v4 page size to 10', async function () {
      const res = await get<ListResponse>(sb, `/profile/identity/v4/Users`, token);
      expect(res.body.itemsPerPage).to.equal(10);
    });

    it('returns one v4 user by UUID, and 404 for an unknown one', async function () {
      const user = sb.admin.users()[3] as { id: string };
      expect((await get(sb, `/profile/identity/v4/Users/${user.id}`, token)).body['id']).to.equal(user.id);
      const missing = await get(sb, `/profile/identity/v4/Users/00000000-0000-4000-8000-000000000000`, token);
      expect(missing.status).to.equal(404);
      expect(missing.body).to.include({ status: '404' });
    });

    it('finds a user by e-mail with the v4.1 search, shaped like the documented response', async function () {
      const user = sb.admin.users().find((u) => u.email !== u.loginId) ?? sb.admin.users()[0];
      const res = await call<ListResponse>(`${sb.baseUrl}/profile/identity/v4.1/Users/.search`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          schemas: ['urn:ietf:params:scim:api:messages:concur:2.0:SearchRequest'],
          filter: `emails.value eq "${user?.email}"`,
          attributes: ['emails'],
        }),
      });
      expect(res.status).to.equal(200);
      expect(Object.keys(res.body)).to.deep.equal(['schemas', 'totalResults', 'startIndex', 'itemsPerPage', 'Resources']);
      expect(res.body.Resources).to.deep.equal([{ emails: [{ verified: false, type: 'work', value: user?.email, notifications: true }], id: user?.id }]);
    });

    it('pages the v4.1 search with nextCursor and omits it on the last page', async function () {
      const ids: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const res: Res<ListResponse> = await call<ListResponse>(`${sb.baseUrl}/profile/identity/v4.1/Users/.search`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:concur:2.0:SearchRequest'], count: 20, ...(cursor ? { cursor } : {}) }),
        });
        ids.push(...res.body.Resources.map((r) => r['id'] as string));
        cursor = res.body.nextCursor;
        pages++;
      } while (cursor);
      expect(pages).to.equal(3);
      expect(new Set(ids).size).to.equal(45);
    });

    it('refuses identity calls made with a user-level token', async function () {
      const login = (sb.admin.users()[0] as { loginId: string }).loginId;
      const res = await get(sb, '/profile/identity/v4/Users', await userToken(sb, login));
      expect(res.status).to.equal(403);
    });
  });

  describe('Expense v4 reportsToApprove and workflow actions', function () {
    let sb: ConcurSandbox;
    before(async function () {
      sb = await startConcurSandbox({ seed: 61, reports: 30 });
    });
    after(async function () {
      await sb.close();
    });

    const approverOf = (id: string) => {
      const login = sb.admin.report(id)?.ApproverLoginID;
      return sb.admin.users().find((u) => u.loginId === login) as { id: string; loginId: string };
    };

    it('lists exactly the reports waiting on an approver as a bare array', async function () {
      const { ID } = sb.admin.submit({});
      const approver = approverOf(ID);
      const res = await call<Json[]>(`${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reportsToApprove`, auth(await companyToken(sb)));
      expect(res.status).to.equal(200);
      expect(res.body).to.be.an('array');
      const expected = sb.admin.state().reports.filter((r) => r.status === 'A_PEND' && r.approverLoginID === approver.loginId);
      expect(res.body.map((r) => r['reportId']).sort()).to.deep.equal(expected.map((r) => r.id).sort());
      expect(Object.keys(res.body[0] as Json)).to.deep.equal([
        'name',
        'reportDate',
        'reportId',
        'reportNumber',
        'submitDate',
        'approver',
        'employee',
        'amountDueEmployee',
        'claimedAmount',
        'totalApprovedAmount',
        'hasExceptions',
        'reportType',
      ]);
    });

    it('approves with the approver’s own user token and answers 204', async function () {
      const { ID } = sb.admin.submit({});
      const approver = approverOf(ID);
      const res = await call(`${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reports/${ID}/approve`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${await userToken(sb, approver.loginId)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ comment: 'ok' }),
      });
      expect(res.status).to.equal(204);
      expect(sb.admin.report(ID)?.ApprovalStatusCode).to.equal('A_APPR');
    });

    it('refuses to approve with someone else’s token with 403 in the v4 error shape', async function () {
      const { ID } = sb.admin.submit({});
      const approver = approverOf(ID);
      const stranger = sb.admin.users().find((u) => u.id !== approver.id) as { loginId: string };
      const res = await call(`${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reports/${ID}/approve`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${await userToken(sb, stranger.loginId)}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).to.equal(403);
      expect(res.body).to.include.keys('timestamp', 'httpStatus', 'errorMessage', 'path');
      expect(sb.admin.report(ID)?.ApprovalStatusCode).to.equal('A_PEND');
    });

    it('refuses a send back without a comment with 400', async function () {
      const { ID } = sb.admin.submit({});
      const approver = approverOf(ID);
      const res = await call(`${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reports/${ID}/sendBack`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${await userToken(sb, approver.loginId)}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).to.equal(400);
      expect(res.body['validationErrors']).to.be.an('array').with.length(1);
    });

    it('sends back with a comment and moves the report to A_RESU', async function () {
      const { ID } = sb.admin.submit({});
      const approver = approverOf(ID);
      const res = await call(`${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reports/${ID}/sendBack`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${await userToken(sb, approver.loginId)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ comment: 'Please split the hotel bill' }),
      });
      expect(res.status).to.equal(204);
      expect(sb.admin.report(ID)).to.include({ ApprovalStatusCode: 'A_RESU', LastComment: 'Please split the hotel bill' });
    });
  });

  describe('faults', function () {
    it('answers 429 with a Retry-After header and the documented body', async function () {
      await withSandbox({ seed: 71, faults: { rate429: 1, retryAfterSeconds: 3 } }, async (sb) => {
        const res = await get(sb, `${REPORTS}?user=ALL`, await companyToken(sb));
        expect(res.status).to.equal(429);
        expect(res.headers.get('retry-after')).to.equal('3');
        expect(res.body).to.include({ httpStatus: '429 - Too Many Requests', path: REPORTS });
        expect(res.body['error']).to.deep.equal({ id: 'security.rate.limit.reached', message: 'Too many requests' });
      });
    });

    it('answers 503 in the endpoint’s error shape', async function () {
      await withSandbox({ seed: 72, faults: { rate503: 1 } }, async (sb) => {
        const res = await get(sb, `${REPORTS}?user=ALL`, await companyToken(sb));
        expect(res.status).to.equal(503);
        expect(res.body).to.have.nested.property('Error.Message');
      });
    });

    it('sends a malformed report page as a 200 whose body is not valid JSON', async function () {
      await withSandbox({ seed: 73, faults: { rateMalformed: 1 } }, async (sb) => {
        const res = await fetch(`${sb.baseUrl}${REPORTS}?user=ALL`, auth(await companyToken(sb)));
        expect(res.status).to.equal(200);
        expect(res.headers.get('content-type')).to.match(/application\/json/);
        const text = await res.text();
        expect(text.startsWith('{"Items":[')).to.equal(true);
        expect(() => JSON.parse(text)).to.throw(SyntaxError);
      });
    });

    it('holds a hung request until the client’s AbortSignal fires, and close() still returns', async function () {
      const sb = await startConcurSandbox({ seed: 74, faults: { rateHang: 1 } });
      const token = await companyToken(sb);
      const started = Date.now();
      let error: unknown;
      try {
        await fetch(`${sb.baseUrl}${REPORTS}?user=ALL`, { ...auth(token), signal: AbortSignal.timeout(300) });
      } catch (e) {
        error = e;
      }
      expect((error as Error | undefined)?.name).to.equal('TimeoutError');
      expect(Date.now() - started).to.be.at.least(250);
      const pending = fetch(`${sb.baseUrl}${REPORTS}?user=ALL`, auth(token)).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100));
      const closeStarted = Date.now();
      await sb.close();
      expect(Date.now() - closeStarted).to.be.below(2000);
      expect(await pending).to.be.instanceOf(Error);
      expect(callsTo(sb.calls(), `GET ${REPORTS}`, 'aborted')).to.equal(2);
    });

    it('expires access tokens after about two seconds of sandbox time under expiringTokens', async function () {
      await withSandbox({ seed: 75, freezeClock: true, faults: { expiringTokens: true } }, async (sb) => {
        const token = await companyToken(sb);
        expect((await get(sb, `${REPORTS}?user=ALL`, token)).status).to.equal(200);
        sb.admin.advanceClock(3);
        expect((await get(sb, `${REPORTS}?user=ALL`, token)).status).to.equal(401);
      });
    });

    it('answers identity calls with 504 under identity-down and leaves reports alone', async function () {
      await withSandbox({ seed: 76, faults: 'identity-down' }, async (sb) => {
        const token = await companyToken(sb);
        const identity = await get(sb, '/profile/identity/v4/Users', token);
        expect(identity.status).to.equal(504);
        expect(identity.body).to.include({ status: '504' });
        expect((await get(sb, `${REPORTS}?user=ALL`, token)).status).to.equal(200);
      });
    });

    it('answers identity calls late under identityTimeoutRate', async function () {
      await withSandbox({ seed: 77, faults: { identityTimeoutRate: 1, identityTimeoutMs: 300 } }, async (sb) => {
        const token = await companyToken(sb);
        const started = Date.now();
        expect((await get(sb, '/profile/identity/v4/Users', token)).status).to.equal(200);
        expect(Date.now() - started).to.be.at.least(280);
      });
    });

    it('leaves the token endpoint and /_admin alone by default', async function () {
      await withSandbox({ seed: 78, faults: { rate503: 1 } }, async (sb) => {
        await companyToken(sb);
        expect((await call(`${sb.baseUrl}/_admin/state`)).status).to.equal(200);
      });
    });

    it('draws the same faults from the same seed', async function () {
      const statuses = async (): Promise<number[]> => {
        const out: number[] = [];
        await withSandbox({ seed: 79, faults: 'flaky' }, async (sb) => {
          sb.setFaults({ rate429: 0.3, rate503: 0.3 });
          const token = await companyToken(sb);
          for (let i = 0; i < 20; i++) out.push((await get(sb, `${REPORTS}?user=ALL&limit=1`, token)).status);
        });
        return out;
      };
      const a = await statuses();
      expect(a).to.deep.equal(await statuses());
      expect(new Set(a).size).to.equal(3);
    });

    it('switches faults at runtime through PUT /_admin/faults', async function () {
      await withSandbox({ seed: 83 }, async (sb) => {
        const token = await companyToken(sb);
        const set = await call(`${sb.baseUrl}/_admin/faults`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ rate503: 1 }),
        });
        expect(set.status).to.equal(200);
        expect((await get(sb, `${REPORTS}?user=ALL`, token)).status).to.equal(503);
        await call(`${sb.baseUrl}/_admin/faults`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '"none"' });
        expect((await get(sb, `${REPORTS}?user=ALL`, token)).status).to.equal(200);
      });
    });

    it('refuses an out-of-range fault rate', async function () {
      await withSandbox({ seed: 80 }, async (sb) => {
        expect(() => sb.setFaults({ rate429: 2 })).to.throw(RangeError);
        expect(() => sb.setFaults('nope' as 'none')).to.throw(RangeError);
      });
    });
  });

  describe('call accounting', function () {
    it('counts requests by endpoint pattern and status, excluding /_admin', async function () {
      await withSandbox({ seed: 81, reports: 5 }, async (sb) => {
        const token = await companyToken(sb);
        const { ID } = sb.admin.submit({});
        await get(sb, `${REPORTS}?user=ALL`, token);
        await get(sb, `${REPORTS}/${ID}`, token);
        await get(sb, `${REPORTS}/NOPE`, token);
        await get(sb, `/api/v3.0/expense/entries?reportID=${ID}`, token);
        await call(`${sb.baseUrl}/_admin/state`);
        const calls = sb.calls();
        expect(calls.total).to.equal(5);
        expect(callsTo(calls, 'POST /oauth2/v0/token', 200)).to.equal(1);
        expect(callsTo(calls, `GET ${REPORTS}`, 200)).to.equal(1);
        expect(callsTo(calls, `GET ${REPORTS}/:id`)).to.equal(2);
        expect(callsTo(calls, `GET ${REPORTS}/:id`, 404)).to.equal(1);
        expect(callsTo(calls, 'GET /api/v3.0/expense/entries')).to.equal(1);
        expect(Object.keys(calls.byEndpoint).some((k) => k.includes('_admin'))).to.equal(false);
      });
    });

    it('starts again from zero after resetCalls()', async function () {
      await withSandbox({ seed: 82, reports: 1 }, async (sb) => {
        await get(sb, `${REPORTS}?user=ALL`, await companyToken(sb));
        sb.resetCalls();
        expect(sb.calls()).to.deep.equal({ total: 0, byEndpoint: {}, byStatus: {}, correlationIds: {} });
      });
    });
  });

  describe('scale', function () {
    it('seeds 100,000 pending reports and pages through all of them with limit=100', async function () {
      this.timeout(120_000);
      const seedStarted = performance.now();
      const sb = await startConcurSandbox({ seed: 91, reports: 100_000 });
      const seedMs = performance.now() - seedStarted;
      try {
        const token = await companyToken(sb);
        const pageStarted = performance.now();
        const ids = new Set<string>();
        let pages = 0;
        let url: string | null | undefined = `${sb.baseUrl}${REPORTS}?user=ALL&approvalStatusCode=A_PEND&limit=100`;
        while (url) {
          const page: Res<Page> = await call<Page>(url, auth(token));
          for (const r of page.body.Items) ids.add(r.ID);
          pages++;
          url = page.body.NextPage;
        }
        const pageMs = performance.now() - pageStarted;
        console.log(
          `      seeded 100,000 pending (+25,000 other) reports in ${seedMs.toFixed(0)} ms; ` + `paged ${pages} pages of 100 in ${pageMs.toFixed(0)} ms`,
        );
        expect(pages).to.equal(1000);
        expect(ids.size).to.equal(100_000);
      } finally {
        await sb.close();
      }
    });
  });
});
