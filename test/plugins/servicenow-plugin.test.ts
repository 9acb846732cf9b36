import { expect } from 'chai';
import pino from 'pino';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import { systemClock } from '../../core/contracts/clock.js';
import { EncryptedCredentialStore } from '../../core/host/credentials.js';
import { deepLink, total } from '../../plugins/servicenow/approval-mapper.js';
import { resilientFetch } from '../../plugins/servicenow/client/resilient-fetch.js';
import { ServiceNowAuth, ServiceNowAuthError } from '../../plugins/servicenow/client/servicenow-auth.js';
import { nextOffset } from '../../plugins/servicenow/client/table-client.js';
import { startServiceNowSandbox, type ServiceNowSandbox } from '../../plugins/servicenow/sandbox/index.js';
import type { ServiceNowAuthConfig } from '../../plugins/servicenow/servicenow-config.js';
import { EMPTY_INSTANCE } from '../support/servicenow-harness.js';

const NS = 'source:snow';
const silent = pino({ level: 'silent' });

/**
 * ServiceNow auth against the sandbox's /oauth_token.do (real HTTP on loopback). Two auth objects
 * on one credential store stand for two processes on one queue (a host and a CLI command).
 */
describe('ServiceNow auth through the credential store (real HTTP on loopback)', () => {
  let sandbox: ServiceNowSandbox;
  let queue: MemoryApprovalQueue;
  let credentials: EncryptedCredentialStore;

  beforeEach(async () => {
    sandbox = await startServiceNowSandbox({ ...EMPTY_INSTANCE, freezeClock: false, clock: Date.now() });
    queue = new MemoryApprovalQueue();
    await queue.init();
    credentials = new EncryptedCredentialStore(queue, { logger: silent });
  });
  afterEach(async () => sandbox.close());

  const tokenCalls = () => sandbox.admin.calls()['POST /oauth_token.do'] ?? 0;
  const auth = (config: ServiceNowAuthConfig) =>
    new ServiceNowAuth(sandbox.url, config, credentials, NS, resilientFetch(silent, undefined), systemClock, silent);
  const clientCredentials = (): Extract<ServiceNowAuthConfig, { type: 'oauth' }> => ({
    type: 'oauth',
    clientId: sandbox.credentials.clientId,
    clientSecret: sandbox.credentials.clientSecret,
  });

  it('uses the access token another process stored (encrypted) instead of asking again', async () => {
    const header = await auth(clientCredentials()).header();
    expect(header).to.match(/^Bearer \S+$/);
    expect(await auth(clientCredentials()).header(), 'the second process').to.equal(header);
    expect(tokenCalls()).to.equal(1);
    const stored = (await queue.getState(NS, 'oauth'))!;
    expect(stored).to.match(/^ah-enc:v1:/);
    expect(stored).to.not.include(header.slice('Bearer '.length));
  });

  it('asks for a new token after a 401 made the caller invalidate the one it used, and stores that one for the others', async () => {
    const first = auth(clientCredentials());
    const refused = await first.header();
    first.invalidate(refused);
    const renewed = await first.header();
    expect(renewed).to.not.equal(refused);
    expect(tokenCalls()).to.equal(2);
    expect(await auth(clientCredentials()).header()).to.equal(renewed);
    expect(tokenCalls()).to.equal(2);
  });

  it("obtains tokens with the refresh-token grant from a refresh token of the integration user's", async () => {
    const response = await fetch(`${sandbox.url}/oauth_token.do`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: sandbox.credentials.clientId,
        client_secret: sandbox.credentials.clientSecret,
        username: sandbox.credentials.username,
        password: sandbox.credentials.password,
      }),
    });
    const { refresh_token: refreshToken } = (await response.json()) as { refresh_token: string };
    const header = await auth({ ...clientCredentials(), grant: 'refresh_token', refreshToken }).header();
    const table = await fetch(`${sandbox.url}/api/now/table/sys_user?sysparm_limit=1`, { headers: { Authorization: header } });
    expect(table.status).to.equal(200);
  });

  it('names the settings to check when the client is refused, without the secret', async () => {
    const wrong = { ...clientCredentials(), clientSecret: 'not-the-secret' };
    const error = await auth(wrong)
      .header()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).to.be.instanceOf(ServiceNowAuthError);
    expect((error as Error).message).to.match(/HTTP 401 .*auth\.clientId and auth\.clientSecret/);
    expect((error as Error).message).to.not.include('not-the-secret');
  });

  it('sends basic auth as configured, asking for no token', async () => {
    const header = await auth({ type: 'basic', username: sandbox.credentials.username, password: sandbox.credentials.password }).header();
    const table = await fetch(`${sandbox.url}/api/now/table/sys_user?sysparm_limit=1`, { headers: { Authorization: header } });
    expect(table.status).to.equal(200);
    expect(tokenCalls()).to.equal(0);
  });
});

describe('ServiceNow plugin pieces', () => {
  it("reads the next page's offset from a Link header, and none without rel=next", () => {
    const link =
      '<https://x.service-now.com/api/now/table/t?sysparm_query=a%3Db&sysparm_offset=0&sysparm_limit=100>;rel="first",' +
      '<https://x.service-now.com/api/now/table/t?sysparm_query=a%3Db&sysparm_offset=200&sysparm_limit=100>;rel="next",' +
      '<https://x.service-now.com/api/now/table/t?sysparm_query=a%3Db&sysparm_offset=900&sysparm_limit=100>;rel="last"';
    expect(nextOffset(link)).to.equal(200);
    expect(nextOffset(link.replace('rel="next"', 'rel="prev"'))).to.equal(undefined);
    expect(nextOffset(null)).to.equal(undefined);
  });

  it('multiplies price by quantity in decimal, never in floating point', () => {
    expect(total('0.10', '3', 'USD')).to.deep.equal({ value: '0.30', currency: 'USD' });
    expect(total('1299', '2', 'EUR')).to.deep.equal({ value: '2598.00', currency: 'EUR' });
    expect(total('19.995', '1', 'USD')).to.deep.equal({ value: '19.995', currency: 'USD' });
    expect(total('0', '4', 'USD')).to.equal(undefined);
    expect(total('', '1', 'USD')).to.equal(undefined);
  });

  it('links the approval record inside the navigation frame, its uri URL-encoded', () => {
    expect(deepLink('https://acme.service-now.com/', '0123456789abcdef0123456789abcdef')).to.equal(
      'https://acme.service-now.com/nav_to.do?uri=sysapproval_approver.do%3Fsys_id%3D0123456789abcdef0123456789abcdef',
    );
  });
});
