import { createHash } from 'node:crypto';
import { expect } from 'chai';
import pino from 'pino';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import { systemClock } from '../../core/contracts/clock.js';
import { EncryptedCredentialStore } from '../../core/host/credentials.js';
import { ConcurTokenManager } from '../../plugins/concur/client/token-manager.js';
import type { FetchLike } from '../../plugins/concur/client/resilient-fetch.js';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY } from '../support/sandbox-deployment.js';

const NS = 'source:acme';
const tokenCalls = (s: ConcurSandbox): number =>
  Object.entries(s.calls().byEndpoint)
    .filter(([k]) => k.startsWith('POST /oauth2/v0/token'))
    .reduce((n, [, v]) => n + (v as { total: number }).total, 0);

/**
 * Two token managers on one credential store stand for two processes on one queue (a host and a
 * CLI command): they share one chain of tokens through the store, never through their memory.
 */
describe('Concur tokens shared through the credential store (real HTTP on loopback)', () => {
  let sandbox: ConcurSandbox;
  let queue: MemoryApprovalQueue;
  let credentials: EncryptedCredentialStore;

  beforeEach(async () => {
    sandbox = await startConcurSandbox(SMALL_COMPANY);
    queue = new MemoryApprovalQueue();
    await queue.init();
    credentials = new EncryptedCredentialStore(queue, { logger: pino({ level: 'silent' }) });
  });
  afterEach(async () => {
    await sandbox.close();
  });

  const manager = (fetch: FetchLike = (r) => globalThis.fetch(r)) =>
    new ConcurTokenManager(
      {
        clientId: sandbox.credentials.clientId,
        clientSecret: sandbox.credentials.clientSecret,
        refreshToken: sandbox.credentials.refreshToken,
        authBaseUrl: sandbox.baseUrl,
        baseUrl: sandbox.baseUrl,
      },
      credentials,
      NS,
      fetch,
      systemClock,
      pino({ level: 'silent' }),
    );

  it('uses a still-valid access token another process stored instead of refreshing again', async () => {
    const token = await manager().accessToken();
    expect(tokenCalls(sandbox)).to.equal(1);
    expect(await manager().accessToken(), 'the second process').to.equal(token);
    expect(tokenCalls(sandbox), 'token calls after the second process').to.equal(1);
    const stored = (await queue.getState(NS, 'oauth'))!;
    expect(stored)
      .to.match(/^ah-enc:v1:/)
      .and.not.include(token);
  });

  it('refreshes once more, with the stored successor, when the API refused the stored access token (401)', async () => {
    const a = manager();
    const first = await a.accessToken();
    a.invalidate(first);
    const second = await a.accessToken();
    expect(second).to.not.equal(first);
    expect(tokenCalls(sandbox)).to.equal(2);
    expect(sandbox.refreshTokenUsage()).to.deep.equal({ attempts: [1, 1, 0], refused: 0 });
  });

  it('on code 108 looks at the store again and continues with a token a process that took no lock rotated meanwhile', async () => {
    const seed = createHash('sha256').update(sandbox.credentials.refreshToken).digest('hex').slice(0, 16);
    let interfered = false;
    // Between this process reading the stored token and sending it, an older version (plain text, no
    // lock) redeems the same token and stores the successor.
    const racing: FetchLike = async (request) => {
      if (!interfered && new URL(request.url).pathname === '/oauth2/v0/token') {
        interfered = true;
        const body = await request.clone().text();
        const theirs = await globalThis.fetch(new Request(request.url, { method: 'POST', headers: request.headers, body }));
        const successor = ((await theirs.json()) as { refresh_token: string }).refresh_token;
        await queue.setState(NS, 'oauth', JSON.stringify({ refreshToken: successor, seed }));
      }
      return globalThis.fetch(request);
    };
    const token = await manager(racing).accessToken();
    expect(token).to.be.a('string');
    const usage = sandbox.refreshTokenUsage();
    expect(usage.refused, 'the one refusal the race caused').to.equal(1);
    // The initial token tried twice (theirs, then ours: refused), its successor redeemed by us once, ours live.
    expect(usage.attempts).to.deep.equal([2, 1, 0]);
    expect(await queue.getState(NS, 'oauth')).to.match(/^ah-enc:v1:/);
  });
});
