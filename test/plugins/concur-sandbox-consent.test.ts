import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { SandboxUserInfo } from '../../plugins/concur/sandbox/sandbox-admin.js';
import { callsTo } from '../../plugins/concur/sandbox/sandbox-calls.js';
import { startConcurSandbox, type ConcurSandbox, type ConcurSandboxOptions } from '../../plugins/concur/sandbox/concur-sandbox.js';
import { call, tokenRequest, type Json, type Res } from '../support/sandbox-http.js';

/**
 * The Concur sandbox's user side over real HTTP on 127.0.0.1: the authorization grant (consent
 * page, code, PKCE), user tokens and their scopes, refresh rotation and revocation, and the v4
 * approve / sendBack calls an approver makes with their own token (docs/concur-api.md 2.4, 4, 13).
 */

interface User {
  readonly id: string;
  readonly loginId: string;
}

const REDIRECT = 'http://127.0.0.1:9/callback?tenant=t1';
const WORKFLOW_SCOPE = 'expense.report.workflowstatus.write';
const APPROVE_KEY = 'PATCH /expensereports/v4/users/:userId/context/:contextType/reports/:reportId/approve';

/** A PKCE pair (RFC 7636 4.1, 4.2). */
function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(sb: ConcurSandbox, params: Record<string, string>): string {
  const q = new URLSearchParams({ client_id: sb.credentials.clientId, redirect_uri: REDIRECT, response_type: 'code', ...params });
  return `${sb.baseUrl}/oauth2/v0/authorize?${q.toString()}`;
}

/** The hidden inputs and action of the consent page's form. */
function parseConsentForm(html: string): { action: string; fields: Record<string, string>; logins: string[] } {
  const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1];
  if (!action) throw new Error(`no consent form in ${html}`);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1] as string] = (m[2] as string)
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  }
  const logins = [...html.matchAll(/<option value="([^"]+)">/g)].map((m) => m[1] as string);
  return { action, fields, logins };
}

/** Opens the consent page, submits it as `loginId` with `decision`, and returns the redirect's URL. */
async function consent(sb: ConcurSandbox, params: Record<string, string>, loginId: string, decision: 'allow' | 'deny' = 'allow'): Promise<URL> {
  const page = await fetch(authorizeUrl(sb, params), { redirect: 'manual' });
  expect(page.status).to.equal(200);
  expect(page.headers.get('content-type')).to.match(/^text\/html/);
  const form = parseConsentForm(await page.text());
  expect(form.logins).to.include(loginId);
  const res = await fetch(`${sb.baseUrl}${form.action}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form.fields, loginId, decision }).toString(),
  });
  expect(res.status).to.equal(302);
  return new URL(res.headers.get('location') as string);
}

/** The whole grant for `user`: consent with PKCE, then the code exchange. */
async function userGrant(sb: ConcurSandbox, user: User, scope?: string): Promise<Json> {
  const { verifier, challenge } = pkce();
  const redirected = await consent(sb, { code_challenge: challenge, code_challenge_method: 'S256', ...(scope ? { scope } : {}) }, user.loginId);
  const res = await tokenRequest(sb, {
    grant_type: 'authorization_code',
    code: redirected.searchParams.get('code') as string,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
  });
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body;
}

async function companyToken(sb: ConcurSandbox): Promise<string> {
  const res = await tokenRequest(sb, { grant_type: 'password', credtype: 'authtoken', username: sb.companyId, password: sb.credentials.requestToken });
  expect(res.status).to.equal(200);
  return res.body['access_token'] as string;
}

function act(sb: ConcurSandbox, token: string, userId: string, reportId: string, action: 'approve' | 'sendBack', body: Json = {}): Promise<Res> {
  return call(`${sb.baseUrl}/expensereports/v4/users/${userId}/context/MANAGER/reports/${reportId}/${action}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function queue(sb: ConcurSandbox, token: string, userId: string): Promise<string[]> {
  const res = await call<Json[]>(`${sb.baseUrl}/expensereports/v4/users/${userId}/context/MANAGER/reportsToApprove`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status).to.equal(200);
  return res.body.map((r) => r['reportId'] as string);
}

const claimsOf = (idToken: unknown): Json => JSON.parse(Buffer.from(String(idToken).split('.')[1] ?? '', 'base64url').toString('utf8')) as Json;

async function withSandbox(options: ConcurSandboxOptions, fn: (sb: ConcurSandbox) => Promise<void>): Promise<void> {
  const sb = await startConcurSandbox(options);
  try {
    await fn(sb);
  } finally {
    await sb.close();
  }
}

describe('Concur sandbox: user consent and acting as an approver', function () {
  let sb: ConcurSandbox;
  before(async function () {
    sb = await startConcurSandbox({ seed: 81, reports: 10 });
  });
  after(async function () {
    await sb.close();
  });

  const userByLogin = (login: string | null | undefined): User => sb.admin.users().find((u) => u.loginId === login) as User;
  /** A fresh pending report and its approver. */
  const pending = (): { id: string; approver: User } => {
    const report = sb.admin.submit({});
    return { id: report.ID, approver: userByLogin(report.ApproverLoginID) };
  };
  const stranger = (not: User): User => sb.admin.users().find((u) => u.id !== not.id) as User;

  describe('authorization grant', function () {
    it('runs consent page → allow → code → token → approve 204, and the report leaves reportsToApprove', async function () {
      const { id, approver } = pending();
      const { verifier, challenge } = pkce();
      const redirected = await consent(
        sb,
        { scope: `openid ${WORKFLOW_SCOPE}`, state: 'st-1', code_challenge: challenge, code_challenge_method: 'S256' },
        approver.loginId,
      );
      expect(`${redirected.origin}${redirected.pathname}`).to.equal('http://127.0.0.1:9/callback');
      expect(redirected.searchParams.get('tenant')).to.equal('t1');
      expect(redirected.searchParams.get('state')).to.equal('st-1');
      expect(redirected.searchParams.get('geolocation')).to.equal(sb.baseUrl);
      const code = redirected.searchParams.get('code') as string;
      expect(code).to.have.length.above(20);

      const token = await tokenRequest(sb, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
      expect(token.status, JSON.stringify(token.body)).to.equal(200);
      expect(token.body).to.include({ token_type: 'Bearer', expires_in: '3600', scope: `openid ${WORKFLOW_SCOPE}`, geolocation: sb.baseUrl });
      expect(token.body['refresh_token']).to.be.a('string');
      expect(claimsOf(token.body['id_token'])).to.include({ sub: approver.id, 'concur.type': 'user', aud: sb.credentials.clientId });

      const access = token.body['access_token'] as string;
      expect(await queue(sb, access, approver.id)).to.include(id);
      const before = sb.admin.report(id)?.LastModifiedDate;
      sb.admin.advanceClock(5);
      sb.resetCalls();
      expect((await act(sb, access, approver.id, id, 'approve', { comment: 'ok', expectedStepSequence: '1' })).status).to.equal(204);
      expect(callsTo(sb.calls(), APPROVE_KEY, 204)).to.equal(1);
      expect(await queue(sb, access, approver.id)).not.to.include(id);
      const after = sb.admin.report(id);
      expect(after?.ApprovalStatusCode).to.equal('A_APPR');
      expect(after?.LastModifiedDate).not.to.equal(before);
    });

    it('redirects with error=access_denied and the state when the user denies', async function () {
      const redirected = await consent(sb, { state: 'st-2' }, pending().approver.loginId, 'deny');
      expect(redirected.searchParams.get('error')).to.equal('access_denied');
      expect(redirected.searchParams.get('state')).to.equal('st-2');
      expect(redirected.searchParams.has('code')).to.equal(false);
    });

    it('refuses a code whose PKCE verifier does not match, or is missing', async function () {
      const { approver } = pending();
      for (const verifier of [pkce().verifier, undefined]) {
        const { challenge } = pkce();
        const redirected = await consent(sb, { code_challenge: challenge, code_challenge_method: 'S256' }, approver.loginId);
        const res = await tokenRequest(sb, {
          grant_type: 'authorization_code',
          code: redirected.searchParams.get('code') as string,
          redirect_uri: REDIRECT,
          ...(verifier ? { code_verifier: verifier } : {}),
        });
        expect(res.status).to.equal(400);
        expect(res.body).to.include({ error: 'invalid_grant' });
        expect(res.body).not.to.have.property('access_token');
      }
    });

    it('refuses a code used a second time', async function () {
      const { approver } = pending();
      const redirected = await consent(sb, {}, approver.loginId);
      const params = { grant_type: 'authorization_code', code: redirected.searchParams.get('code') as string, redirect_uri: REDIRECT };
      expect((await tokenRequest(sb, params)).status).to.equal(200);
      const again = await tokenRequest(sb, params);
      expect(again.status).to.equal(400);
      expect(again.body).to.include({ code: 103 });
    });

    it('refuses a code exchanged with another redirect_uri (code 104), and that code cannot be retried', async function () {
      const { approver } = pending();
      const redirected = await consent(sb, {}, approver.loginId);
      const code = redirected.searchParams.get('code') as string;
      const wrong = await tokenRequest(sb, { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9/other' });
      expect(wrong.status).to.equal(400);
      expect(wrong.body).to.include({ code: 104, error: 'invalid_grant' });
      expect((await tokenRequest(sb, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT })).status).to.equal(400);
    });

    it('refuses a code after its lifetime on the sandbox clock', async function () {
      await withSandbox({ seed: 82, freezeClock: true, authorizationCodeLifetimeSeconds: 60 }, async (other) => {
        const login = other.admin.users()[0]?.loginId as string;
        const page = await fetch(authorizeUrl(other, {}), { redirect: 'manual' });
        const form = parseConsentForm(await page.text());
        const res = await fetch(`${other.baseUrl}${form.action}`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ ...form.fields, loginId: login, decision: 'allow' }).toString(),
        });
        const code = new URL(res.headers.get('location') as string).searchParams.get('code') as string;
        other.admin.advanceClock(61);
        const late = await tokenRequest(other, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
        expect(late.status).to.equal(400);
        expect(late.body).to.include({ code: 103 });
      });
    });

    it('shows an error page instead of redirecting to an unregistered redirect_uri', async function () {
      await withSandbox({ seed: 83, redirectUris: ['https://hub.example.test/concur/callback'] }, async (other) => {
        const res = await fetch(authorizeUrl(other, { redirect_uri: 'https://evil.example.test/cb' }), { redirect: 'manual' });
        expect(res.status).to.equal(400);
        expect(res.headers.get('location')).to.equal(null);
        expect(await res.text()).to.include('redirect_uri is not registered');
        const ok = await fetch(authorizeUrl(other, { redirect_uri: 'https://hub.example.test/concur/callback' }), { redirect: 'manual' });
        expect(ok.status).to.equal(200);
      });
    });

    it('redirects with invalid_scope for a scope the app does not hold, and with invalid_request for a plain PKCE challenge', async function () {
      const scope = await fetch(authorizeUrl(sb, { scope: 'openid company.write', state: 's' }), { redirect: 'manual' });
      expect(scope.status).to.equal(302);
      const scopeError = new URL(scope.headers.get('location') as string);
      expect(scopeError.searchParams.get('error')).to.equal('invalid_scope');
      expect(scopeError.searchParams.get('state')).to.equal('s');
      const plain = await fetch(authorizeUrl(sb, { code_challenge: pkce().verifier, code_challenge_method: 'plain' }), { redirect: 'manual' });
      expect(new URL(plain.headers.get('location') as string).searchParams.get('error')).to.equal('invalid_request');
    });
  });

  describe('approve and send back with user tokens', function () {
    it('refuses approve with a company token with 403', async function () {
      const { id, approver } = pending();
      const res = await act(sb, await companyToken(sb), approver.id, id, 'approve');
      expect(res.status).to.equal(403);
      expect(res.body).to.include.keys('timestamp', 'httpStatus', 'errorMessage', 'path');
      expect(sb.admin.report(id)?.ApprovalStatusCode).to.equal('A_PEND');
    });

    it('refuses another user’s token with 403, on the approver’s path and on their own', async function () {
      const { id, approver } = pending();
      const other = stranger(approver);
      const token = (await userGrant(sb, other))['access_token'] as string;
      expect((await act(sb, token, approver.id, id, 'approve')).status).to.equal(403);
      expect((await act(sb, token, other.id, id, 'approve')).status).to.equal(403);
      expect(sb.admin.report(id)?.ApprovalStatusCode).to.equal('A_PEND');
    });

    it('refuses a user token granted without the workflow scope with 403', async function () {
      const { id, approver } = pending();
      const token = (await userGrant(sb, approver, 'openid expense.report.read'))['access_token'] as string;
      expect(await queue(sb, token, approver.id)).to.include(id);
      const res = await act(sb, token, approver.id, id, 'approve');
      expect(res.status).to.equal(403);
      expect(res.body['errorMessage']).to.include(WORKFLOW_SCOPE);
    });

    it('refuses send back without a comment with 400, and sends back with one to the submitter', async function () {
      const { id, approver } = pending();
      const token = (await userGrant(sb, approver))['access_token'] as string;
      const missing = await act(sb, token, approver.id, id, 'sendBack', { comment: '  ' });
      expect(missing.status).to.equal(400);
      expect(missing.body['validationErrors']).to.deep.equal([{ id: 'comment', message: 'comment is required to send a report back', source: 'comment' }]);
      expect((await act(sb, token, approver.id, id, 'sendBack', { comment: 'Receipt missing' })).status).to.equal(204);
      expect(sb.admin.report(id)).to.include({ ApprovalStatusCode: 'A_RESU', ApproverLoginID: null, LastComment: 'Receipt missing' });
      expect(await queue(sb, token, approver.id)).not.to.include(id);
    });

    it('answers 404 for an unknown report', async function () {
      const { approver } = pending();
      const token = (await userGrant(sb, approver))['access_token'] as string;
      expect((await act(sb, token, approver.id, 'NOSUCHREPORT0000', 'approve')).status).to.equal(404);
    });

    it('moves an approved report to the next approver’s step when the workflow has two manager steps', async function () {
      await withSandbox({ seed: 84, approvalLevels: 2 }, async (other) => {
        const users = other.admin.users();
        const first = users.find((u) => u.isApprover && u.managerLoginId !== null) as SandboxUserInfo;
        const second = users.find((u) => u.loginId === first.managerLoginId) as SandboxUserInfo;
        const owner = users.find((u) => !u.isApprover && u.loginId !== second.loginId) as SandboxUserInfo;
        const { ID } = other.admin.submit({ owner: owner.loginId, approver: first.loginId });
        const token = (await userGrant(other, first))['access_token'] as string;
        expect((await act(other, token, first.id, ID, 'approve', { expectedStepSequence: '1' })).status).to.equal(204);
        expect(other.admin.state().reports.find((r) => r.id === ID)).to.include({ status: 'A_PEND', approverLoginID: second.loginId, stepSequence: 2 });
        expect(await queue(other, token, first.id)).not.to.include(ID);
        const secondToken = (await userGrant(other, second))['access_token'] as string;
        expect(await queue(other, secondToken, second.id)).to.include(ID);
        expect((await act(other, secondToken, second.id, ID, 'approve', { expectedStepSequence: '2' })).status).to.equal(204);
        expect(other.admin.report(ID)?.ApprovalStatusCode).to.equal('A_APPR');
      });
    });

    it('refuses a stale expectedStepSequence with 409 and accepts the current one', async function () {
      const { id, approver } = pending();
      const token = (await userGrant(sb, approver))['access_token'] as string;
      // Approved "in Concur" at step 1 and routed to the same approver for step 2.
      sb.admin.approve(id, { nextApprover: approver.loginId });
      expect(sb.admin.state().reports.find((r) => r.id === id)?.stepSequence).to.equal(2);
      const stale = await act(sb, token, approver.id, id, 'approve', { expectedStepSequence: '1' });
      expect(stale.status).to.equal(409);
      expect(stale.body).to.include.keys('errorMessage', 'httpStatus');
      expect((await act(sb, token, approver.id, id, 'approve', { expectedStepSequence: 'one' })).status).to.equal(400);
      expect((await act(sb, token, approver.id, id, 'approve', { expectedStepSequence: 2 })).status).to.equal(204);
    });

    it('refuses a click after the report was approved, sent back or reassigned in Concur', async function () {
      for (const change of ['approve', 'sendBack', 'reassign'] as const) {
        const { id, approver } = pending();
        const token = (await userGrant(sb, approver))['access_token'] as string;
        if (change === 'approve') sb.admin.approve(id);
        else if (change === 'sendBack') sb.admin.sendBack(id, 'from the web');
        else sb.admin.reassign(id, stranger(approver).loginId);
        expect((await act(sb, token, approver.id, id, 'approve')).status, change).to.equal(403);
        expect((await act(sb, token, approver.id, id, 'approve', { expectedStepSequence: 1 })).status, change).to.equal(change === 'reassign' ? 403 : 409);
      }
    });

    it('lets the approver re-read the report in the MANAGER context, and refuses someone else’s token', async function () {
      const { id, approver } = pending();
      const token = (await userGrant(sb, approver))['access_token'] as string;
      const url = `${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reports/${id}`;
      const res = await call(url, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ reportId: id, approvalStatusId: 'A_PEND', isSentBack: false });
      expect(res.body['submitDate']).to.match(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      const otherToken = (await userGrant(sb, stranger(approver)))['access_token'] as string;
      expect((await call(url, { headers: { authorization: `Bearer ${otherToken}` } })).status).to.equal(403);
      const missing = await call(`${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reports/NOSUCHREPORT0000`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(missing.status).to.equal(404);
    });
  });

  describe('refresh, rotation and revocation of user tokens', function () {
    it('rotates a user refresh token: the new one keeps user and scopes, the used one is refused with 108', async function () {
      const { id, approver } = pending();
      const grant = await userGrant(sb, approver);
      const first = grant['refresh_token'] as string;
      const refreshed = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: first });
      expect(refreshed.status).to.equal(200);
      expect(refreshed.body['refresh_token']).to.be.a('string').and.not.equal(first);
      expect(refreshed.body['scope']).to.equal(grant['scope']);
      expect(claimsOf(refreshed.body['id_token'])).to.include({ sub: approver.id, 'concur.type': 'user' });
      const reused = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: first });
      expect(reused.status).to.equal(400);
      expect(reused.body).to.include({ code: 108, error: 'invalid_grant' });
      expect((await act(sb, refreshed.body['access_token'] as string, approver.id, id, 'approve')).status).to.equal(204);
    });

    it('refuses the refresh token after the admin revokes the user’s consent, and leaves other users alone', async function () {
      const { approver } = pending();
      const other = stranger(approver);
      const mine = (await userGrant(sb, approver))['refresh_token'] as string;
      const theirs = (await userGrant(sb, other))['refresh_token'] as string;
      const revoked = await call(`${sb.baseUrl}/_admin/users/${encodeURIComponent(approver.loginId)}/revoke-consent`, { method: 'POST' });
      expect(revoked.status).to.equal(200);
      expect(revoked.body['revoked']).to.be.at.least(1);
      const refused = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: mine });
      expect(refused.status).to.equal(400);
      expect(refused.body).to.include({ code: 108 });
      expect((await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: theirs })).status).to.equal(200);
    });

    it('revokes a user’s refresh tokens through DELETE /app-mgmt/v0/connections with their access token', async function () {
      const { approver } = pending();
      const grant = await userGrant(sb, approver);
      const res = await fetch(`${sb.baseUrl}/app-mgmt/v0/connections`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${grant['access_token'] as string}` },
      });
      expect(res.status).to.equal(200);
      const refused = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: grant['refresh_token'] as string });
      expect(refused.body).to.include({ code: 108 });
      const company = await fetch(`${sb.baseUrl}/app-mgmt/v0/connections`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${await companyToken(sb)}` },
      });
      expect(company.status).to.equal(403);
    });

    it('mints a consented user refresh token over /_admin with the scopes asked for', async function () {
      const { approver } = pending();
      const minted = await call(`${sb.baseUrl}/_admin/users/${approver.id}/consent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scopes: ['openid', WORKFLOW_SCOPE] }),
      });
      expect(minted.status).to.equal(200);
      const refreshed = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: minted.body['refreshToken'] as string });
      expect(refreshed.body).to.include({ scope: `openid ${WORKFLOW_SCOPE}` });
      expect(claimsOf(refreshed.body['id_token'])).to.include({ sub: approver.id });
    });
  });
  describe('one time password grant', function () {
    const otpRequest = (params: Record<string, string>): Promise<Res> =>
      call(`${sb.baseUrl}/oauth2/v0/otp`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: sb.credentials.clientId, client_secret: sb.credentials.clientSecret, ...params }).toString(),
      });
    const emailOf = (user: User): string => sb.admin.users().find((u) => u.id === user.id)?.email as string;

    it('e-mails a one-time token to the outbox and exchanges it, with the client’s own parameters, for a user token', async function () {
      const { id, approver } = pending();
      const sent = await otpRequest({ channel_type: 'email', channel_handle: emailOf(approver), link: 'https://hub.example.test/otp', chat: 'C42' });
      expect(sent.status).to.equal(200);
      expect(sent.body).to.deep.equal({ message: 'otp sent' });
      const mail = sb.admin.otpOutbox().at(-1);
      expect(mail).to.include({ to: emailOf(approver).toLowerCase(), link: 'https://hub.example.test/otp' });
      expect(mail?.params).to.deep.equal({ chat: 'C42' });
      const token = await tokenRequest(sb, {
        grant_type: 'otp',
        channel_type: 'email',
        channel_handle: emailOf(approver),
        otp: mail?.otp as string,
        chat: 'C42',
      });
      expect(token.status, JSON.stringify(token.body)).to.equal(200);
      expect(claimsOf(token.body['id_token'])).to.include({ sub: approver.id, 'concur.type': 'user' });
      expect(token.body['refresh_token']).to.be.a('string');
      expect((await act(sb, token.body['access_token'] as string, approver.id, id, 'approve')).status).to.equal(204);
    });

    it('refuses a one-time token whose client parameters differ (85), and that token is then gone (83)', async function () {
      const { approver } = pending();
      await otpRequest({ channel_type: 'email', channel_handle: emailOf(approver), chat: 'C1' });
      const otp = sb.admin.otpOutbox().at(-1)?.otp as string;
      const base = { grant_type: 'otp', channel_type: 'email', channel_handle: emailOf(approver), otp };
      expect((await tokenRequest(sb, { ...base, chat: 'C2' })).body).to.include({ code: 85 });
      expect((await tokenRequest(sb, { ...base, chat: 'C1' })).body).to.include({ code: 83 });
    });

    it('refuses an unknown e-mail (55) and any channel but email (80)', async function () {
      expect((await otpRequest({ channel_type: 'email', channel_handle: 'nobody@example.invalid' })).body).to.include({ code: 55 });
      expect((await otpRequest({ channel_type: 'sms', channel_handle: '+15550100' })).body).to.include({ code: 80 });
    });
  });
});
