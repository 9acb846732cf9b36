import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SqliteApprovalQueue } from '../../adapters/queue-sqlite/sqlite-approval-queue.js';
import { approval, commitContext } from '../support/queue-fixtures.js';
import { startCli } from '../support/cli.js';

describe('the CLI writing into a pipe', function () {
  this.timeout(60_000);

  it('exits quietly when the reader closes the pipe early, as `approvals-hub queue list | head -5` does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ah-pipe-'));
    // 3,000 rows print about 400 KB, far more than a pipe buffers (64 KB on Linux), so the CLI is
    // still writing when the reader goes away.
    const now = new Date();
    const queue = new SqliteApprovalQueue(join(dir, 'queue.db'));
    await queue.init();
    const approvals = Array.from({ length: 3_000 }, (_, i) => approval(`P${i}`, { source: 'files', sourceUpdatedAt: now.toISOString() }));
    await queue.commit({ source: 'files', approvals }, commitContext({ now, channels: [] }));
    await queue.close();
    writeFileSync(join(dir, 'truth.json'), JSON.stringify({ approvals: [] }));
    writeFileSync(
      join(dir, 'approvals.config.json'),
      JSON.stringify({
        plugins: [resolve(process.cwd(), 'test/fixtures/file-source-plugin')],
        queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
        sources: [{ id: 'files', plugin: 'file-source', config: { path: 'truth.json' } }],
        notifiers: [{ id: 'console', plugin: 'console' }],
      }),
    );

    const child = startCli(['queue', 'list'], { cwd: dir });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = await new Promise<string[]>((done) => {
      let head = '';
      child.stdout!.on('data', (d: Buffer) => {
        head += d.toString();
        const got = head.split('\n');
        if (got.length > 5) {
          child.stdout!.destroy(); // what `head -5` does once it has its lines
          done(got.slice(0, 5));
        }
      });
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.on('close', (c, s) => done([c, s])));

    expect(lines[0]).to.match(/^files:expense-report:P\d+ {2}Report P\d+/);
    expect(stderr, 'stderr').to.equal('');
    expect({ code, signal }).to.deep.equal({ code: 0, signal: null });
  });
});
