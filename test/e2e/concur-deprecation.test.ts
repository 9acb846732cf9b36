import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { callsTo } from '../../plugins/concur/sandbox/index.js';
import { resolveFaults } from '../../plugins/concur/sandbox/sandbox-faults.js';
import { runCli } from '../support/cli.js';
import { concurHarness, SOURCE, type ConcurHarness } from '../support/concur-harness.js';
import { sandboxSource } from '../support/sandbox-deployment.js';

const LIST = 'GET /api/v3.0/expense/reports';
const TOKEN = 'POST /oauth2/v0/token';
const WARNING = '/api/v3.0/expense/reports is deprecated; use /expensereports/v4 instead';
const SUNSET = 'Sun, 31 Jan 2027 00:00:00 GMT';

describe('Concur deprecation headers (x-api-warn, sunset)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  beforeEach(async () => {
    h = await concurHarness({
      sweepIntervalSeconds: 0,
      sandbox: {
        faults: {
          deprecations: [
            { endpoint: LIST, warning: WARNING, sunset: SUNSET },
            { endpoint: TOKEN, warning: 'use the v1 token endpoint', sunset: 'not a date' },
          ],
        },
      },
    });
    h.sandbox.admin.submit({});
  });

  const deprecationLogs = () => h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'Concur flags this endpoint as deprecated');
  const metric = async (endpoint: string) => {
    const line = (await h.host.metrics.render())
      .split('\n')
      .find((l) => l.startsWith(`approvals_hub_source_deprecations_total{source="${SOURCE}",endpoint="${endpoint}"}`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  };
  /** `approvals-hub diagnostics` in its own process, on the harness's SQLite file. */
  const diagnostics = async (...args: string[]) => {
    const dir = dirname(h.dbPath);
    const concur = sandboxSource(h.sandbox, { id: SOURCE });
    writeFileSync(
      join(dir, 'approvals.config.json'),
      JSON.stringify({ queue: { adapter: 'sqlite', config: { path: h.dbPath } }, sources: [concur.source], notifiers: [{ id: 'console', plugin: 'console' }] }),
    );
    return runCli(['diagnostics', '--config', join(dir, 'approvals.config.json'), ...args], { cwd: dir, env: concur.env });
  };

  it('logs each deprecated endpoint once at warn level with both header values, however many calls', async () => {
    for (let i = 0; i < 4; i++) {
      await h.cycle();
      h.advance(60);
    }
    expect(callsTo(h.sandbox.calls(), LIST)).to.be.at.least(4);
    const logs = deprecationLogs();
    expect(logs.map((l) => [l.level, l.endpoint, l.xApiWarn, l.sunset]).sort()).to.deep.equal(
      [
        [40, LIST, WARNING, SUNSET],
        [40, TOKEN, 'use the v1 token endpoint', 'not a date'],
      ].sort(),
    );
  });

  it('counts every flagged response in approvals_hub_source_deprecations_total{source,endpoint}', async () => {
    for (let i = 0; i < 3; i++) {
      await h.cycle();
      h.advance(60);
    }
    const calls = h.sandbox.calls();
    expect(await metric(LIST))
      .to.equal(callsTo(calls, LIST))
      .and.to.be.at.least(3);
    expect(await metric(TOKEN)).to.equal(callsTo(calls, TOKEN));
    expect(await metric('GET /api/v3.0/expense/entries')).to.equal(0);
  });

  it('shows the deprecated endpoints in `approvals-hub diagnostics`, recorded once across restarts', async () => {
    await h.cycle();
    const firstSeen = h.sandbox.admin.now();
    await h.restart();
    h.advance(3600);
    await h.cycle();
    await h.host.stop();

    const json = await diagnostics('--json');
    expect(json.code, json.stderr).to.equal(0);
    expect((JSON.parse(json.stdout) as { deprecations: unknown[] }).deprecations).to.deep.equal([
      { source: SOURCE, endpoint: LIST, warning: WARNING, sunset: SUNSET, firstSeen: new Date(firstSeen).toISOString(), sunsetAt: '2027-01-31T00:00:00.000Z' },
      {
        source: SOURCE,
        endpoint: TOKEN,
        warning: 'use the v1 token endpoint',
        sunset: 'not a date',
        firstSeen: new Date(firstSeen).toISOString(),
        sunsetAt: null,
      },
    ]);

    const text = await diagnostics();
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.include(`${SOURCE}  ${LIST}  deprecated, sunset 2027-01-31, first seen ${new Date(firstSeen).toISOString()}: ${WARNING}\n`);
    expect(text.stdout).to.include('2 deprecated endpoint(s) still called');
  });

  it('refuses a sandbox deprecation switch that names no method and route, saying which entry is wrong', () => {
    expect(() =>
      resolveFaults({
        deprecations: [
          { endpoint: LIST, warning: 'w', sunset: SUNSET },
          { endpoint: '/api/v3.0/expense/reports', warning: 'w', sunset: SUNSET },
        ],
      }),
    ).to.throw(RangeError, 'deprecations[1].endpoint must be a method and a route, e.g. "GET /api/v3.0/expense/reports"');
  });
});
