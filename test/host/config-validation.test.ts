import { expect } from 'chai';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadDeployment } from '../../core/host/deployment.js';
import { runCli } from '../support/cli.js';

const FILE_SOURCE = resolve(process.cwd(), 'test/fixtures/file-source-plugin');

describe('deployment file validation (approvals-hub run / config validate)', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-config-'));
    writeFileSync(join(dir, 'truth.json'), JSON.stringify({ approvals: [] }));
  });

  const valid = () => ({
    plugins: [FILE_SOURCE],
    queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
    sources: [{ id: 'files', plugin: 'file-source', config: { path: 'truth.json' } }],
    notifiers: [{ id: 'console', plugin: 'console' }],
  });

  /** Runs the host once on the given file; asserts it refused to start and returns the problem lines. */
  async function refused(content: string | object, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    const run = await runCli(['run', '--once', '--config', file], { cwd: dir, env });
    expect(run.code, run.stderr).to.equal(2);
    expect(run.stdout).to.equal('');
    expect(existsSync(join(dir, 'queue.db')), 'nothing may start').to.equal(false);
    const validate = await runCli(['config', 'validate', file], { cwd: dir, env });
    expect(validate.code).to.equal(2);
    expect(validate.stderr).to.equal(run.stderr);
    return run.stderr.trim().split('\n');
  }

  it('accepts a valid file and loads a source plugin from outside the repo', async () => {
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify(valid()));
    const r = await runCli(['config', 'validate', file], { cwd: dir });
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/valid \(1 source\(s\), queue sqlite, notifiers console\)/);
  });

  it('refuses an unknown source plugin, naming its path', async () => {
    const d = valid();
    d.sources[0]!.plugin = 'sap-ariba';
    const lines = await refused(d);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^sources\[0\]\.plugin: unknown source plugin "sap-ariba" \(known: [a-z, -]*\bfile-source\b[a-z, -]*\)$/);
  });

  it('refuses a missing required field', async () => {
    const d = valid();
    d.sources[0]!.config = {} as { path: string };
    expect(await refused(d)).to.deep.equal(['sources[0].config.path: is required']);
  });

  it('refuses a value of the wrong type', async () => {
    expect(await refused({ ...valid(), retentionDays: 'thirty' })).to.deep.equal(['retentionDays: must be integer']);
  });

  it('refuses a bad URL', async () => {
    const d = {
      ...valid(),
      sources: [{ id: 'acme', plugin: 'concur', config: { baseUrl: 'http://concur.example.com', companyId: '6b0e8e7a-3f34-4a38-9f53-0d7d3a4a9f11', clientId: 'x', clientSecret: { env: 'CS' }, refreshToken: { env: 'RT' } } }],
    };
    expect(await refused(d, { CS: 'secret-value', RT: 'refresh-value' })).to.deep.equal([
      'sources[0].config.baseUrl: must be an https URL (http is allowed only on 127.0.0.1 or localhost)',
    ]);
  });

  it('refuses a secret reference to an unset environment variable', async () => {
    const d = {
      ...valid(),
      sources: [{ id: 'acme', plugin: 'concur', config: { companyId: '6b0e8e7a-3f34-4a38-9f53-0d7d3a4a9f11', clientId: 'x', clientSecret: { env: 'AH_TEST_UNSET_SECRET' }, refreshToken: { env: 'RT' } } }],
    };
    expect(await refused(d, { RT: 'refresh-value' })).to.deep.equal(['sources[0].config.clientSecret: environment variable AH_TEST_UNSET_SECRET is not set']);
  });

  it('refuses a secret written as a literal', async () => {
    const d = {
      ...valid(),
      sources: [{ id: 'acme', plugin: 'concur', config: { companyId: '6b0e8e7a-3f34-4a38-9f53-0d7d3a4a9f11', clientId: 'x', clientSecret: 'hunter2-literal', refreshToken: { env: 'RT' } } }],
    };
    const lines = await refused(d, { RT: 'refresh-value' });
    expect(lines).to.deep.equal(['sources[0].config.clientSecret: must be a secret reference such as {"env": "NAME"} or {"file": "path"}, not a literal']);
    expect(lines.join('\n')).not.to.include('hunter2-literal');
  });

  it('refuses a duplicate source id', async () => {
    const d = valid();
    d.sources.push({ ...d.sources[0]! });
    expect(await refused(d)).to.deep.equal(['sources[1].id: duplicate source id "files"']);
  });

  it('refuses an unknown queue adapter', async () => {
    const lines = await refused({ ...valid(), queue: { adapter: 'mysql', config: {} } });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^queue\.adapter: unknown queue adapter "mysql" \(known: [a-z, ]*\bsqlite\b[a-z, ]*\)$/);
  });

  it('refuses malformed JSON with its line and column', async () => {
    const lines = await refused('{\n  "sources": [\n    { "id": "a", }\n  ]\n}\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/approvals\.config\.json: malformed JSON at line 3, column \d+/);
  });

  it('lists every problem of a file at once, one line each', async () => {
    const d = { ...valid(), retentionDays: 0, queue: { adapter: 'mysql' }, notifiers: [{ id: 'chat', plugin: 'pager' }] };
    const lines = await refused(d);
    expect(lines).to.have.length(1); // schema errors stop before plugin lookups
    expect(lines[0]).to.equal('retentionDays: must be >= 1');
    const d2 = { ...valid(), queue: { adapter: 'mysql' }, notifiers: [{ id: 'chat', plugin: 'pager' }] };
    const lines2 = await refused(d2);
    expect(lines2).to.have.length(2);
    expect(lines2[0]).to.match(/^queue\.adapter: unknown queue adapter "mysql"/);
    expect(lines2[1]).to.match(/^notifiers\[0\]\.plugin: unknown notifier plugin "pager" \(known: [a-z, -]*\bconsole\b/);
  });
});

// In process rather than through the CLI, so they check this build's schema: the CLI prints
// exactly these problem lines, one per line (see above).
describe('deployment file validation: reminders', () => {
  const problems = (reminders: unknown): string[] => {
    try {
      loadDeployment(undefined, { raw: { queue: { adapter: 'memory' }, notifiers: [], reminders }, env: {} });
    } catch (error) {
      if (error instanceof ConfigError) return [...error.problems];
      throw error;
    }
    return [];
  };

  it('has no reminders without a reminders block, and documented defaults with an empty one', () => {
    const raw = { queue: { adapter: 'memory' }, notifiers: [] };
    expect(loadDeployment(undefined, { raw: { ...raw }, env: {} }).reminders).to.equal(undefined);
    expect(loadDeployment(undefined, { raw: { ...raw, reminders: {} }, env: {} }).reminders).to.deep.equal({
      afterHours: 24,
      maxReminders: 3,
      quietHours: { start: '19:00', end: '08:00' },
      defaultTimeZone: 'UTC',
    });
    expect(loadDeployment(undefined, { raw: { ...raw, reminders: { digest: {} } }, env: {} }).reminders?.digest).to.deep.equal({ at: '09:00' });
  });

  it('refuses a quiet-hours start of 25:00 with one line naming reminders.quietHours.start', () => {
    expect(problems({ quietHours: { start: '25:00', end: '08:00' } })).to.deep.equal(['reminders.quietHours.start: must be a time of day as HH:MM, from 00:00 to 23:59']);
  });

  it('refuses a default time zone that is not an IANA zone', () => {
    expect(problems({ defaultTimeZone: 'Mars/Olympus_Mons' })).to.deep.equal(['reminders.defaultTimeZone: must be an IANA time zone such as "Europe/Berlin" or "UTC"']);
  });

  it('refuses a digest time inside the quiet hours', () => {
    expect(problems({ digest: { at: '07:00' } })).to.deep.equal(['reminders.digest.at: must be outside quietHours (19:00 to 08:00), or no digest would ever go out on time']);
  });
});

describe('deployment file validation: Concur backfillCallsPerCycle', () => {
  const load = (backfillCallsPerCycle?: unknown) => {
    const config = { baseUrl: 'https://concur.example.com', clientId: 'x', clientSecret: { env: 'CS' }, refreshToken: { env: 'RT' }, ...(backfillCallsPerCycle === undefined ? {} : { backfillCallsPerCycle }) };
    return loadDeployment(undefined, { raw: { queue: { adapter: 'memory' }, notifiers: [], sources: [{ id: 'acme', plugin: 'concur', config }] }, env: { CS: 's', RT: 'r' } });
  };
  const problems = (value: unknown): string[] => {
    try {
      load(value);
    } catch (error) {
      if (error instanceof ConfigError) return [...error.problems];
      throw error;
    }
    return [];
  };

  it('defaults to 20 entries calls a cycle, and takes 0 (off) up to 500', () => {
    expect(load().sources[0]!.config.backfillCallsPerCycle).to.equal(20);
    expect(problems(0)).to.deep.equal([]);
    expect(problems(500)).to.deep.equal([]);
  });

  it('refuses a negative, a fractional and a too large value, naming the setting', () => {
    expect(problems(-1)).to.deep.equal(['sources[0].config.backfillCallsPerCycle: must be >= 0']);
    expect(problems(2.5)).to.deep.equal(['sources[0].config.backfillCallsPerCycle: must be integer']);
    expect(problems(501)).to.deep.equal(['sources[0].config.backfillCallsPerCycle: must be <= 500']);
  });
});
