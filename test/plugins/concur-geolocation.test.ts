import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import pino from 'pino';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import { systemClock } from '../../core/contracts/clock.js';
import { EncryptedCredentialStore } from '../../core/host/credentials.js';
import { ConcurTokenManager } from '../../plugins/concur/client/token-manager.js';
import { trustedGeolocation, UntrustedGeolocationError } from '../../plugins/concur/mappers/token-mapper.js';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { startConcurProxy, type ConcurProxy } from '../support/concur-proxy.js';
import { SMALL_COMPANY } from '../support/sandbox-deployment.js';

const NS = 'source:acme';
const EVIL = 'https://evil.example.com';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection, got a value');
}

describe('Concur geolocation: credentials go only to Concur or a configured origin', () => {
  describe('trustedGeolocation', () => {
    it("accepts https on Concur's documented data-centre hosts and the configured origins", () => {
      for (const host of ['us2', 'eu2', 'apj1', 'usg', 'glz', 'www-us2', 'us-impl', 'emea-impl', 'us', 'emea', 'eu', 'emea2']) {
        expect(trustedGeolocation(`https://${host}.api.concursolutions.com`)).to.equal(`https://${host}.api.concursolutions.com`);
      }
      for (const origin of [
        'https://www.concursolutions.com',
        'https://eu1.concursolutions.com',
        'https://cn.api.concurcdc.cn',
        'https://cn.api.cnqr-cn.com',
      ]) {
        expect(trustedGeolocation(`${origin}/`)).to.equal(origin);
      }
      expect(trustedGeolocation('https://US2.API.Concursolutions.com')).to.equal('https://us2.api.concursolutions.com');
      expect(trustedGeolocation('https://concur.internal.example:8443', ['https://concur.internal.example:8443/'])).to.equal(
        'https://concur.internal.example:8443',
      );
      expect(trustedGeolocation('http://127.0.0.1:4000', ['http://127.0.0.1:3999'])).to.equal('http://127.0.0.1:4000');
    });

    it('refuses any other host, plain http, and loopback when nothing configured is on loopback, naming the host', () => {
      const cases: [string, string][] = [
        [EVIL, 'evil.example.com'],
        ['https://us2.api.concursolutions.com.evil.example', 'us2.api.concursolutions.com.evil.example'],
        ['https://evilconcursolutions.com', 'evilconcursolutions.com'],
        ['https://api.concursolutions.com', 'api.concursolutions.com'],
        ['http://us2.api.concursolutions.com', 'http://us2.api.concursolutions.com'],
        ['https://us2.api.concursolutions.com:8443', 'us2.api.concursolutions.com:8443'],
        ['http://127.0.0.1:4000', '127.0.0.1:4000'],
      ];
      for (const [value, named] of cases) {
        let error: unknown;
        try {
          trustedGeolocation(value, ['https://us.api.concursolutions.com']);
        } catch (e) {
          error = e;
        }
        expect(error, value).to.be.instanceOf(UntrustedGeolocationError);
        expect((error as Error).message, value)
          .to.include(named)
          .and.include('refused');
      }
    });
  });

  describe('token manager against the sandbox (real HTTP on loopback)', () => {
    let sandbox: ConcurSandbox;
    let proxy: ConcurProxy;
    let queue: MemoryApprovalQueue;
    let credentials: EncryptedCredentialStore;
    let server: Server | undefined;

    beforeEach(async () => {
      sandbox = await startConcurSandbox(SMALL_COMPANY);
      proxy = await startConcurProxy();
      proxy.target = sandbox.baseUrl;
      queue = new MemoryApprovalQueue();
      await queue.init();
      credentials = new EncryptedCredentialStore(queue, { logger: pino({ level: 'silent' }) });
    });
    afterEach(async () => {
      await proxy.close();
      await sandbox.close();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
    });

    /** A token manager with no baseUrl, so calls follow the geolocation; tokens are first requested at `authBaseUrl`. */
    const manager = (authBaseUrl: string) =>
      new ConcurTokenManager(
        { clientId: sandbox.credentials.clientId, clientSecret: sandbox.credentials.clientSecret, refreshToken: sandbox.credentials.refreshToken, authBaseUrl },
        credentials,
        NS,
        (request) => fetch(request),
        systemClock,
        pino({ level: 'silent' }),
      );
    const geolocationTo = (target: string) => (body: string) => body.replace(/"geolocation":"[^"]*"/, `"geolocation":"${target}"`);

    it('refuses a token response whose geolocation names another host, and stores nothing', async () => {
      proxy.rules = { rewrite: geolocationTo(EVIL) };
      const error = await rejection(manager(proxy.url).accessToken());
      expect(error).to.be.instanceOf(UntrustedGeolocationError);
      expect(error.message).to.include('evil.example.com');
      expect(await queue.getState(NS, 'oauth')).to.equal(undefined);
    });

    it('refuses a token response whose geolocation is plain http, even on a Concur host, and stores nothing', async () => {
      proxy.rules = { rewrite: geolocationTo('http://us2.api.concursolutions.com') };
      const error = await rejection(manager(proxy.url).accessToken());
      expect(error.message).to.include('http://us2.api.concursolutions.com').and.include('not https');
      expect(await queue.getState(NS, 'oauth')).to.equal(undefined);
    });

    it('does not follow a code-16 body whose geolocation names another host', async () => {
      let requests = 0;
      server = createServer((req, res) => {
        requests++;
        req.resume();
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 16, error: 'invalid_grant', error_description: 'user lives elsewhere', geolocation: EVIL }));
      });
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const error = await rejection(manager(`http://127.0.0.1:${(server.address() as AddressInfo).port}`).accessToken());
      expect(error).to.be.instanceOf(UntrustedGeolocationError);
      expect(error.message).to.include('code-16 geolocation').and.include('evil.example.com');
      expect(requests, 'token requests (no second one to anywhere)').to.equal(1);
      expect(await queue.getState(NS, 'oauth')).to.equal(undefined);
    });

    it('does not use a bad geolocation an older version stored (plain text), and replaces it with the token response one', async () => {
      const seed = createHash('sha256').update(sandbox.credentials.refreshToken).digest('hex').slice(0, 16);
      await queue.setState(NS, 'oauth', JSON.stringify({ refreshToken: sandbox.credentials.refreshToken, geolocation: EVIL, seed }));
      const tokens = manager(proxy.url);
      expect(await tokens.apiBase()).to.equal(proxy.url);
      const stored = JSON.parse((await credentials.get(NS, 'oauth'))!) as { geolocation: string };
      expect(stored.geolocation).to.equal(proxy.url);
      expect(await queue.getState(NS, 'oauth')).to.match(/^ah-enc:v1:/);
    });

    it('does not use a bad geolocation stored encrypted either', async () => {
      const seed = createHash('sha256').update(sandbox.credentials.refreshToken).digest('hex').slice(0, 16);
      await credentials.set(
        NS,
        'oauth',
        JSON.stringify({ refreshToken: sandbox.credentials.refreshToken, geolocation: 'http://us2.api.concursolutions.com', seed }),
      );
      expect(await manager(proxy.url).apiBase()).to.equal(proxy.url);
    });
  });
});
