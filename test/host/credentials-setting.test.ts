import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { ConfigError, loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { sandboxSource } from '../support/sandbox-deployment.js';

function problems(raw: unknown, env: NodeJS.ProcessEnv): string[] {
  try {
    loadDeployment(undefined, { raw, env });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('the credentials setting (credentials.key)', function () {
  this.timeout(60_000);
  const base = () => ({ queue: { adapter: 'memory' }, sources: [], notifiers: [] });

  it('takes a reference to 32 random bytes, base64 or hex', () => {
    const key = randomBytes(32);
    for (const text of [key.toString('base64'), key.toString('hex')]) {
      const d = loadDeployment(undefined, { raw: { ...base(), credentials: { key: { env: 'AH_KEY' } } }, env: { AH_KEY: text } });
      expect(d.credentials.key?.equals(key)).to.equal(true);
    }
    expect(loadDeployment(undefined, { raw: base(), env: {} }).credentials.key).to.equal(undefined);
  });

  it('refuses a literal, an unset variable, a key of the wrong length and an unknown setting, one line each naming the setting', () => {
    expect(problems({ ...base(), credentials: { key: randomBytes(32).toString('base64') } }, {})).to.deep.equal([
      'credentials.key: must be a secret reference such as {"env": "NAME"} or {"file": "path"}, not a literal',
    ]);
    expect(problems({ ...base(), credentials: { key: { env: 'AH_KEY' } } }, {})).to.deep.equal(['credentials.key: environment variable AH_KEY is not set']);
    const short = problems({ ...base(), credentials: { key: { env: 'AH_KEY' } } }, { AH_KEY: randomBytes(16).toString('base64') });
    expect(short).to.deep.equal([
      'credentials.key: must be 32 random bytes written as base64 or as 64 hex digits (e.g. the output of `openssl rand -base64 32`)',
    ]);
    expect(problems({ ...base(), credentials: { keys: {} } }, {})).to.deep.equal(['credentials.keys: is not a known setting']);
  });

  describe('a wrong key on a stored Concur token', () => {
    let sandbox: ConcurSandbox;
    let dir: string;
    beforeEach(async () => {
      sandbox = await startConcurSandbox({ seed: 3, reports: 2, otherReports: 0, approvers: 2, employees: 6, clock: Date.now() });
      dir = mkdtempSync(join(tmpdir(), 'ah-wrong-key-'));
    });
    afterEach(async () => {
      await sandbox.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('fails the cycle with an error naming credentials.key, sends no token request (the stored token is not burnt), and the right key works again', async () => {
      const concur = sandboxSource(sandbox);
      const raw = {
        queue: { adapter: 'sqlite', config: { path: join(dir, 'queue.db') } },
        sources: [concur.source],
        notifiers: [],
        credentials: concur.credentials,
      };
      const host = async (key: string) =>
        Host.create(loadDeployment(undefined, { raw: structuredClone(raw), env: { ...concur.env, AH_TEST_CREDENTIALS_KEY: key } }), {
          logger: pino({ level: 'silent' }),
        });
      const right = concur.env['AH_TEST_CREDENTIALS_KEY']!;

      const first = await host(right);
      expect((await first.runOnce()).failures).to.deep.equal([]);
      await first.stop();
      const before = sandbox.refreshTokenUsage().attempts.length;

      const wrong = await host(randomBytes(32).toString('base64'));
      sandbox.resetCalls();
      const report = await wrong.runOnce();
      await wrong.stop();
      expect(report.failures).to.have.length(1);
      expect(report.failures[0]!.error).to.include('cannot decrypt credential "oauth" of source:acme').and.include('credentials.key');
      expect(sandbox.calls().total, 'calls to Concur with an unreadable stored token').to.equal(0);
      expect(sandbox.refreshTokenUsage().attempts.length).to.equal(before);

      const again = await host(right);
      const fine = await again.runOnce();
      await again.stop();
      expect(fine.failures).to.deep.equal([]);
      expect(sandbox.refreshTokenUsage().refused).to.equal(0);
    });
  });
});
