import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, deploymentSchema, loadDeployment } from '../../core/host/deployment.js';
import { SourceRunner } from '../../core/pipeline/source-runner.js';
import { MAX_TIMER_DELAY_MS, timerDelay } from '../../core/pipeline/timer-delay.js';
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
      sources: [
        {
          id: 'acme',
          plugin: 'concur',
          config: {
            baseUrl: 'http://concur.example.com',
            companyId: '6b0e8e7a-3f34-4a38-9f53-0d7d3a4a9f11',
            clientId: 'x',
            clientSecret: { env: 'CS' },
            refreshToken: { env: 'RT' },
          },
        },
      ],
    };
    expect(await refused(d, { CS: 'secret-value', RT: 'refresh-value' })).to.deep.equal([
      'sources[0].config.baseUrl: must be an https URL (http is allowed only on 127.0.0.1 or localhost)',
    ]);
  });

  it('refuses a secret reference to an unset environment variable', async () => {
    const d = {
      ...valid(),
      sources: [
        {
          id: 'acme',
          plugin: 'concur',
          config: {
            companyId: '6b0e8e7a-3f34-4a38-9f53-0d7d3a4a9f11',
            clientId: 'x',
            clientSecret: { env: 'AH_TEST_UNSET_SECRET' },
            refreshToken: { env: 'RT' },
          },
        },
      ],
    };
    expect(await refused(d, { RT: 'refresh-value' })).to.deep.equal(['sources[0].config.clientSecret: environment variable AH_TEST_UNSET_SECRET is not set']);
  });

  it('refuses a secret written as a literal', async () => {
    const d = {
      ...valid(),
      sources: [
        {
          id: 'acme',
          plugin: 'concur',
          config: { companyId: '6b0e8e7a-3f34-4a38-9f53-0d7d3a4a9f11', clientId: 'x', clientSecret: 'hunter2-literal', refreshToken: { env: 'RT' } },
        },
      ],
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

  it('refuses a poll interval of 3,000,000 s (a timer would clamp it and poll every millisecond), naming its path', async () => {
    const d = valid();
    (d.sources[0] as Record<string, unknown>).pollIntervalSeconds = 3_000_000;
    expect(await refused(d)).to.deep.equal(['sources[0].pollIntervalSeconds: must be <= 86400']);
  });

  it('refuses a web inbox signingKey shorter than 32 characters, without printing it', async () => {
    const d = { ...valid(), notifiers: [{ id: 'inbox', plugin: 'web', config: { signingKey: { env: 'AH_TEST_INBOX_KEY' } } }] };
    const lines = await refused(d, { AH_TEST_INBOX_KEY: 'short-key-1234' });
    expect(lines).to.deep.equal(['notifiers[0].config.signingKey: the secret must be at least 32 characters long (it has 14)']);
  });

  it('refuses an empty secret file', async () => {
    writeFileSync(join(dir, 'webhook-secret'), '\n');
    const d = {
      ...valid(),
      notifiers: [{ id: 'hook', plugin: 'webhook', config: { url: 'https://hooks.example.test/approvals', signingSecret: { file: 'webhook-secret' } } }],
    };
    expect(await refused(d)).to.deep.equal(['notifiers[0].config.signingSecret: secret file webhook-secret is empty']);
  });

  it('refuses a webhook URL that carries user:pass@, without printing them', async () => {
    writeFileSync(join(dir, 'webhook-secret'), 'a-webhook-signing-secret\n');
    const d = {
      ...valid(),
      notifiers: [
        {
          id: 'hook',
          plugin: 'webhook',
          config: { url: 'https://ops:Pa55word-in-url@hooks.example.test/approvals', signingSecret: { file: 'webhook-secret' } },
        },
      ],
    };
    const lines = await refused(d);
    expect(lines).to.deep.equal(['notifiers[0].config.url: must not carry a user name or password (user:pass@); credentials belong in a secret reference']);
  });

  it('refuses two web inbox notifiers, which would collide on /inbox', async () => {
    const key = { AH_TEST_INBOX_KEY: 'k'.repeat(40) };
    const web = (id: string) => ({ id, plugin: 'web', config: { signingKey: { env: 'AH_TEST_INBOX_KEY' } } });
    const lines = await refused({ ...valid(), notifiers: [web('inbox'), web('inbox-2')] }, key);
    expect(lines).to.deep.equal(['notifiers[1].plugin: only one "web" notifier per deployment (it would collide with notifiers[0] on its HTTP paths)']);
  });

  it('refuses two Slack notifiers on one callbackPath', () => {
    const slack = (id: string) => ({
      id,
      plugin: 'slack',
      config: { botToken: { env: 'AH_TEST_SLACK_BOT' }, signingSecret: { env: 'AH_TEST_SLACK_SIGNING' } },
    });
    const env = { AH_TEST_SLACK_BOT: 'xoxb-test-token', AH_TEST_SLACK_SIGNING: 'slack-signing-secret' };
    const load = (notifiers: object[]) => () => loadDeployment(undefined, { raw: { queue: { adapter: 'memory' }, notifiers }, env });
    expect(load([slack('a'), slack('b')])).to.throw(ConfigError, /^notifiers\[1\]\.config\.callbackPath: "\/slack" is already served by notifiers\[0\]$/);
    const second = { ...slack('b'), config: { ...slack('b').config, callbackPath: '/slack-eu' } };
    expect(load([slack('a'), second])).not.to.throw();
  });

  it('refuses a directory given as the deployment file with exit code 2', async () => {
    const folder = join(dir, 'approvals.d');
    mkdirSync(folder);
    const r = await runCli(['config', 'validate', folder], { cwd: dir });
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr.trim()).to.equal(`${folder}: cannot read the deployment file (it is a directory)`);
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
    expect(problems({ quietHours: { start: '25:00', end: '08:00' } })).to.deep.equal([
      'reminders.quietHours.start: must be a time of day as HH:MM, from 00:00 to 23:59',
    ]);
  });

  it('refuses a default time zone that is not an IANA zone', () => {
    expect(problems({ defaultTimeZone: 'Mars/Olympus_Mons' })).to.deep.equal([
      'reminders.defaultTimeZone: must be an IANA time zone such as "Europe/Berlin" or "UTC"',
    ]);
  });

  it('refuses a digest time inside the quiet hours', () => {
    expect(problems({ digest: { at: '07:00' } })).to.deep.equal([
      'reminders.digest.at: must be outside quietHours (19:00 to 08:00), or no digest would ever go out on time',
    ]);
  });
});

describe('numeric settings: every one has limits', () => {
  /** Every number or integer in a JSON Schema lacking a lower or an upper bound, as JSON paths. */
  function unbounded(schema: unknown, path: string): string[] {
    if (typeof schema !== 'object' || schema === null) return [];
    if (Array.isArray(schema)) return schema.flatMap((s, i) => unbounded(s, `${path}[${i}]`));
    const node = schema as Record<string, unknown>;
    const types = ([] as unknown[]).concat(node.type ?? []);
    const missing: string[] = [];
    if (types.includes('number') || types.includes('integer')) {
      if (node.minimum === undefined && node.exclusiveMinimum === undefined) missing.push(`${path}: no minimum`);
      if (node.maximum === undefined && node.exclusiveMaximum === undefined) missing.push(`${path}: no maximum`);
    }
    for (const [key, child] of Object.entries(node)) {
      if (key === 'properties' || key === 'patternProperties') {
        for (const [name, sub] of Object.entries(child as Record<string, unknown>)) missing.push(...unbounded(sub, `${path}.${name}`));
      } else if (['items', 'additionalProperties', 'allOf', 'anyOf', 'oneOf', 'if', 'then', 'else', 'not'].includes(key)) {
        missing.push(...unbounded(child, `${path}.${key}`));
      }
    }
    return missing;
  }

  const manifests = ['plugins', 'adapters'].flatMap((root) =>
    readdirSync(root)
      .map((name) => join(root, name, 'plugin.json'))
      .filter((file) => existsSync(file)),
  );

  it('finds every built-in manifest (the walk below is not vacuous)', () => {
    expect(manifests).to.include.members(['plugins/concur/plugin.json', 'adapters/chat-web/plugin.json', 'adapters/queue-postgres/plugin.json']);
    expect(unbounded({ properties: { n: { type: 'integer', minimum: 1 } } }, 'x')).to.deep.equal(['x.n: no maximum']);
  });

  it('gives every numeric setting of the deployment schema a minimum and a maximum', () => {
    expect(unbounded(deploymentSchema, '(deployment)')).to.deep.equal([]);
  });

  it('gives every numeric setting of every plugin manifest a minimum and a maximum', () => {
    const missing = manifests.flatMap((file) =>
      unbounded((JSON.parse(readFileSync(file, 'utf8')) as { configSchema: unknown }).configSchema, `${file} configSchema`),
    );
    expect(missing).to.deep.equal([]);
  });

  it('never hands a timer a delay Node would clamp to 1 ms', () => {
    expect(timerDelay(MAX_TIMER_DELAY_MS, 'poll')).to.equal(MAX_TIMER_DELAY_MS);
    expect(() => timerDelay(MAX_TIMER_DELAY_MS + 1, 'poll')).to.throw(RangeError, /poll: 2147483648 ms is not a delay a timer can wait/);
    expect(() => timerDelay(Number.NaN, 'poll')).to.throw(RangeError);
    const runner = () =>
      new SourceRunner({ id: 'acme' } as never, {} as never, {} as never, {} as never, {} as never, {
        pollIntervalMs: 3_000_000_000,
        sweepIntervalMs: 0,
        retentionDays: 30,
        channels: [],
        render: (() => undefined) as never,
      });
    expect(runner).to.throw(RangeError, /source acme: poll interval/);
  });
});

describe('deployment file validation: Concur backfillCallsPerCycle', () => {
  const load = (backfillCallsPerCycle?: unknown) => {
    const config = {
      baseUrl: 'https://concur.example.com',
      clientId: 'x',
      clientSecret: { env: 'CS' },
      refreshToken: { env: 'RT' },
      ...(backfillCallsPerCycle === undefined ? {} : { backfillCallsPerCycle }),
    };
    return loadDeployment(undefined, {
      raw: { queue: { adapter: 'memory' }, notifiers: [], sources: [{ id: 'acme', plugin: 'concur', config }] },
      env: { CS: 's', RT: 'r' },
    });
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
