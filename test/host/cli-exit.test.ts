import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DATABASE_URL, dropSchema, freshSchema } from '../soak/soak.js';
import { runCli } from '../support/cli.js';

const FILE_SOURCE = resolve(process.cwd(), 'test/fixtures/file-source-plugin');
const FAILING_SOURCE = resolve(process.cwd(), 'test/fixtures/failing-source-plugin');
/** What a failed start may take before the test kills the child: loose, this is not a timing test. */
const KILL_AFTER_MS = 8_000;
const TOKEN = 'tok-3b1f9c2d7e-do-not-print';

describe('CLI exit codes and what leaves the process', function () {
  this.timeout(60_000);
  let dir: string;
  const write = (deployment: object): string => {
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify(deployment, null, 2));
    return file;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-exit-'));
    writeFileSync(join(dir, 'truth.json'), JSON.stringify({ approvals: [] }));
  });

  describe('usage errors exit 2', () => {
    it('exits 2 on an unknown command', async () => {
      const r = await runCli(['frobnicate'], { cwd: dir });
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(/unknown command 'frobnicate'/);
    });

    it('exits 2 on an unknown option', async () => {
      const r = await runCli(['queue', 'list', '--colour'], { cwd: dir });
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(/unknown option '--colour'/);
    });

    it('exits 2 on a missing argument', async () => {
      const r = await runCli(['queue', 'show'], { cwd: dir });
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(/missing required argument 'key'/);
    });

    it('still exits 0 for --help', async () => {
      const r = await runCli(['--help'], { cwd: dir });
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/Usage: approvals-hub/);
    });
  });

  it("prints a failing source's error on stderr with its secret scrubbed", async () => {
    const file = write({
      plugins: [FAILING_SOURCE],
      queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
      sources: [{ id: 'leaky', plugin: 'failing-source', config: { token: { env: 'AH_TEST_LEAKY_TOKEN' }, failAt: 'cycle' } }],
      notifiers: [{ id: 'console', plugin: 'console' }],
    });
    const r = await runCli(['run', '--once', '--config', file], { cwd: dir, env: { AH_TEST_LEAKY_TOKEN: TOKEN, LOG_LEVEL: 'info' } });
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.include('source leaky failed: upstream refused the request (Authorization: Bearer [REDACTED])');
    expect(r.stderr + r.stdout).not.to.include(TOKEN);
  });

  describe('a failed start exits promptly, having closed what it opened', () => {
    let blocker: Server;
    let busyPort: number;

    beforeEach(async () => {
      blocker = createServer();
      await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
      busyPort = (blocker.address() as { port: number }).port;
    });
    afterEach(async () => new Promise<void>((done) => blocker.close(() => done())));

    /** An embedded Concur sandbox: an HTTP server of its own that a careless failure leaves open. */
    const sandboxSource = { id: 'sbx', plugin: 'concur', config: { sandbox: { reports: 1, approvers: 1, activitySeconds: 0 } } };

    async function failedRun(file: string): Promise<{ code: number | null; stderr: string }> {
      const r = await runCli(['run', '--config', file], { cwd: dir, timeoutMs: KILL_AFTER_MS });
      expect(r.signal, `still running after ${KILL_AFTER_MS} ms, killed; stderr: ${r.stderr}`).to.equal(null);
      return r;
    }

    it('exits 1 when the HTTP port is in use (SQLite, embedded sandbox running)', async () => {
      const file = write({ queue: { adapter: 'sqlite', config: { path: 'queue.db' } }, sources: [sandboxSource], http: { host: '127.0.0.1', port: busyPort } });
      const r = await failedRun(file);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.match(/EADDRINUSE/);
    });

    it('exits 1 when a plugin fails after the embedded sandbox started', async () => {
      const file = write({
        plugins: [FAILING_SOURCE],
        queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
        sources: [sandboxSource, { id: 'broken', plugin: 'failing-source', config: { token: { env: 'AH_TEST_LEAKY_TOKEN' }, failAt: 'load' } }],
      });
      const r = await runCli(['run', '--config', file], { cwd: dir, timeoutMs: KILL_AFTER_MS, env: { AH_TEST_LEAKY_TOKEN: TOKEN } });
      expect(r.signal, `still running after ${KILL_AFTER_MS} ms, killed; stderr: ${r.stderr}`).to.equal(null);
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.include('source "broken" cannot start');
    });

    it('exits 1 when the HTTP port is in use on PostgreSQL (the pool is closed, not left to idle out)', async () => {
      const schema = freshSchema('ah_failed_start');
      try {
        const file = write({
          plugins: [FILE_SOURCE],
          queue: { adapter: 'postgres', config: { connectionString: DATABASE_URL, schema, poolSize: 2 } },
          sources: [{ id: 'files', plugin: 'file-source', config: { path: 'truth.json' } }],
          http: { host: '127.0.0.1', port: busyPort },
        });
        const r = await failedRun(file);
        expect(r.code, r.stderr).to.equal(1);
        expect(r.stderr).to.match(/EADDRINUSE/);
      } finally {
        await dropSchema(DATABASE_URL, schema).catch(() => undefined);
      }
    });
  });
});
