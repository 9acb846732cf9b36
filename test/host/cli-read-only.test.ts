import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { runCli } from '../support/cli.js';
import { sandboxSource } from '../support/sandbox-deployment.js';

const WEB_KEY = 'read-only-test-signing-key-0123456789abcdef';

/**
 * Commands that only read the queue (`queue list`, `queue show`, `outbox list`, `audit-log`,
 * `diagnostics`, `inbox link`) start no source: they call Concur never and need none of its
 * secrets, so an operator can inspect the queue from a shell that holds no Concur credential.
 */
describe('read-only CLI commands need no source secret and never call the source', function () {
  this.timeout(90_000);
  let dir: string;
  let sandbox: ConcurSandbox;
  let config: string;
  let key: string;
  let fullEnv: Record<string, string>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ah-read-only-'));
    sandbox = await startConcurSandbox({ seed: 5, reports: 3, otherReports: 0, approvers: 2, employees: 8, clock: Date.now() });
    const concur = sandboxSource(sandbox);
    config = join(dir, 'approvals.config.json');
    writeFileSync(
      config,
      JSON.stringify({
        queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
        sources: [concur.source],
        notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_WEB_KEY' }, publicUrl: 'https://inbox.example.test' } }],
      }),
    );
    fullEnv = { ...concur.env, AH_WEB_KEY: WEB_KEY };
    const filled = await runCli(['run', '--once', '--config', config], { cwd: dir, env: fullEnv });
    expect(filled.code, filled.stderr).to.equal(0);
    const list = await runCli(['queue', 'list', '--json', '--config', config], { cwd: dir, env: fullEnv });
    key = (JSON.parse(list.stdout) as { key: string }[])[0]!.key;
  });

  after(async () => {
    await sandbox?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // Only the web inbox's own secret: no Concur client secret, refresh token or credential key.
  const withoutSourceSecrets = () => ({ AH_TEST_CLIENT_SECRET: '', AH_TEST_REFRESH_TOKEN: '', AH_WEB_KEY: WEB_KEY });

  const commands: [string, string[], (stdout: string) => void][] = [
    ['queue list', ['queue', 'list', '--json'], (out) => expect(JSON.parse(out)).to.have.length(3)],
    ['queue show', [], (out) => expect(JSON.parse(out)).to.have.property('status', 'pending')],
    ['outbox list', ['outbox', 'list', '--state', 'delivered'], (out) => expect(out).to.match(/\d+ delivered entr/)],
    ['audit-log', ['audit-log', '--json'], (out) => expect(JSON.parse(out)).to.be.an('array')],
    ['diagnostics', ['diagnostics', '--json'], (out) => expect(JSON.parse(out)).to.have.property('unreachable')],
    ['inbox link', ['inbox', 'link', 'ann@example.test'], (out) => expect(out).to.match(/^https:\/\/inbox\.example\.test\/inbox\/login\?/)],
  ];

  for (const [name, args, check] of commands) {
    it(`${name} works with the source's secrets unset and makes no call to Concur`, async () => {
      sandbox.resetCalls();
      const argv = name === 'queue show' ? ['queue', 'show', key, '--json'] : args;
      const r = await runCli([...argv, '--config', config], { cwd: dir, env: withoutSourceSecrets() });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).not.to.include('is not set');
      check(r.stdout);
      expect(sandbox.calls().total, 'calls that reached the Concur sandbox').to.equal(0);
    });
  }

  it('a command that calls Concur (audit) still names the unset secret', async () => {
    const r = await runCli(['audit', '--config', config], { cwd: dir, env: withoutSourceSecrets() });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('sources[0].config.clientSecret: environment variable AH_TEST_CLIENT_SECRET is not set');
  });
});
