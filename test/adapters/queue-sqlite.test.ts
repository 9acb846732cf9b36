import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { Container } from '../../core/di.js';
import { ApprovalQueue } from '../../core/contracts/approval-queue.js';
import { MIGRATIONS } from '../../adapters/queue-sqlite/migrations.js';
import sqliteQueueModule from '../../adapters/queue-sqlite/module.js';
import { DEFAULT_MMAP_MB, SqliteApprovalQueue } from '../../adapters/queue-sqlite/sqlite-approval-queue.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { describeApprovalQueueContract } from '../../core/testing/index.js';
import { approval, batch, commitContext, NOW, SOURCE } from '../support/queue-fixtures.js';
import { legacyBody, withContent } from '../support/legacy-body.js';

/** A fresh directory per test, removed with everything in it (the -wal and -shm files too). */
function scratch(): { dir: string; file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'queue-sqlite-'));
  return { dir, file: join(dir, 'approvals.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function opened(file: string): Promise<SqliteApprovalQueue> {
  const queue = new SqliteApprovalQueue(file);
  await queue.init();
  return queue;
}

/** Reads the file through a connection of its own, so the test sees what is on disk. */
function inspect<T>(file: string, read: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

describeApprovalQueueContract('sqlite', async () => {
  const { file, remove } = scratch();
  let queue = await opened(file);
  return {
    queue,
    reopen: async () => {
      await queue.close();
      queue = await opened(file);
      return queue;
    },
    cleanup: async () => {
      await queue.close();
      remove();
    },
  };
});

describe('SqliteApprovalQueue', () => {
  let store: ReturnType<typeof scratch>;
  let queue: SqliteApprovalQueue;

  beforeEach(async () => {
    store = scratch();
    queue = await opened(store.file);
  });
  afterEach(async () => {
    await queue.close();
    store.remove();
  });

  it('keeps the database in WAL mode', () => {
    expect(inspect(store.file, (db) => db.pragma('journal_mode', { simple: true }))).to.equal('wal');
  });

  it('records the schema version in user_version', () => {
    expect(inspect(store.file, (db) => db.pragma('user_version', { simple: true }))).to.equal(MIGRATIONS.length);
  });

  it('applies no migration twice when the file is opened again', async () => {
    await queue.commit(batch([approval('R1')], { cursor: 'c1' }), commitContext());
    await queue.close();
    queue = await opened(store.file);
    await queue.init();

    expect(inspect(store.file, (db) => db.pragma('user_version', { simple: true }))).to.equal(MIGRATIONS.length);
    expect(await queue.get(approval('R1').key)).to.include({ revision: 1 });
  });

  it('refuses a database written by a newer schema', async () => {
    await queue.close();
    const db = new Database(store.file);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();

    queue = new SqliteApprovalQueue(store.file);
    let error: unknown;
    await queue.init().catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/schema version \d+ is newer/);
  });

  it('keeps committed data after close and reopen', async () => {
    await queue.commit(batch([approval('R1')], { cursor: 'c1' }), commitContext());
    await queue.close();
    queue = await opened(store.file);

    expect(await queue.get(approval('R1').key)).to.include({ revision: 1, title: 'Report R1' });
    expect(await queue.getCursor(SOURCE)).to.equal('c1');
    expect(await queue.listOutbox('pending')).to.have.length(1);
  });

  it('writes nothing from a batch that fails after its first rows are written', async () => {
    await queue.commit(batch([approval('R1')], { cursor: 'c1' }), commitContext());
    // The outbox insert comes after the approval rows in the transaction; make it fail there.
    const db = new Database(store.file);
    db.exec("CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    db.close();

    let error: unknown;
    await queue.commit(batch([approval('R2')], { cursor: 'c2', audit: [{ actor: 'ops', action: 'x' }] }), commitContext()).catch((e: unknown) => (error = e));

    expect(String(error)).to.contain('disk says no');
    expect(await queue.get(approval('R2').key)).to.equal(undefined);
    expect(await queue.getCursor(SOURCE)).to.equal('c1');
    expect(await queue.listAudit()).to.deep.equal([]);
    expect(inspect(store.file, (db) => db.prepare('SELECT count(*) AS n FROM approval_approvers').get())).to.deep.equal({ n: 1 });
  });

  it('stores none of a push when one of its triggers cannot be stored, and rejects so it is not acknowledged', async () => {
    const db = new Database(store.file);
    db.exec("CREATE TRIGGER refuse_trigger BEFORE INSERT ON source_triggers WHEN NEW.trigger_id = 'e3' BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    db.close();
    const push = ['e1', 'e2', 'e3'].map((id) => ({ id, externalId: `R-${id}`, receivedAt: NOW.toISOString() }));

    let error: unknown;
    await queue.addTriggers(SOURCE, push).catch((e: unknown) => (error = e));

    expect(String(error)).to.contain('disk says no');
    expect(await queue.pendingTriggers(SOURCE)).to.deep.equal({ count: 0, oldestReceivedAt: undefined });
    expect(await queue.addTriggers(SOURCE, push.slice(0, 2)), 'e1 and e2 were not remembered').to.deep.equal({ added: 2, duplicates: 0 });
  });

  it('answers listForApprover with one range of approval_list, without a sort or a read of approvals', () => {
    const plan = inspect(store.file, (db) =>
      db
        .prepare(
          `EXPLAIN QUERY PLAN
          SELECT body FROM approval_list
          WHERE email = 'grace@acme.test' AND source_updated_at >= '2025-01-01'
          ORDER BY source_updated_at DESC, approval_key DESC LIMIT 50`,
        )
        .all()
        .map((row) => (row as { detail: string }).detail),
    );
    expect(plan).to.deep.equal(['SEARCH approval_list USING PRIMARY KEY (email=? AND source_updated_at>?)']);
  });

  it('answers dueReminders from the reminders_due index, one range per reminder count', () => {
    const plan = inspect(store.file, (db) =>
      db
        .prepare(
          `EXPLAIN QUERY PLAN
          SELECT r.approver_id, r.sent, r.last_at, a.body
          FROM reminders r CROSS JOIN approvals a ON a.key = r.approval_key
          WHERE r.sent IN (0, 1, 2) AND r.last_at <= '2025-06-01' AND a.status = 'pending' AND a.source_updated_at >= '2025-05-01'
            AND json_extract(a.body, '$.generation') = r.generation
            AND EXISTS (SELECT 1 FROM approval_approvers p WHERE p.approval_key = r.approval_key AND p.source_user_id = r.approver_id AND p.email IS NOT NULL)
          ORDER BY r.last_at, r.approval_key, r.approver_id LIMIT 1000`,
        )
        .all()
        .map((row) => (row as { detail: string }).detail),
    );
    expect(plan.join('\n')).to.match(/SEARCH r USING COVERING INDEX reminders_due \(sent=\? AND last_at<\?\)/);
  });

  it('migrates a version 2 database: outbox rows, ids and sequence kept, reminders counted from queued_at, approvals listed by approver', async () => {
    await queue.close();
    const old = scratch();
    try {
      const db = new Database(old.file);
      db.exec(MIGRATIONS[0]!);
      db.exec(MIGRATIONS[1]!);
      db.pragma('user_version = 2');
      const body = { ...approval('R1'), revision: 1, fingerprint: 'f', queuedAt: '2025-06-01T08:00:00.000Z', generation: 'g1' };
      db.prepare(
        `INSERT INTO approvals (key, source, kind, external_id, status, revision, fingerprint, source_updated_at, queued_at, body)
        VALUES (?, ?, 'expense-report', 'R1', 'pending', 1, 'f', ?, ?, ?)`,
      ).run(body.key, SOURCE, body.sourceUpdatedAt, body.queuedAt, JSON.stringify(body));
      db.prepare("INSERT INTO approval_approvers VALUES (?, 'grace', 'grace@acme.test', ?, ?)").run(body.key, SOURCE, body.sourceUpdatedAt);
      const insert =
        db.prepare(`INSERT INTO outbox (approval_key, source, revision, channel, approver, approver_id, action, card, idempotency_key, state, next_attempt_at, created_at)
        VALUES (?, ?, 1, 'console', '{"sourceUserId":"grace"}', 'grace', 'notify', '{}', ?, 'delivered', ?, ?)`);
      for (const n of [1, 2, 3]) insert.run(body.key, SOURCE, `k${n}`, body.queuedAt, body.queuedAt);
      db.prepare('DELETE FROM outbox WHERE id = 3').run();
      db.close();

      queue = await opened(old.file);

      expect((await queue.listOutbox('delivered')).map((e) => [e.id, e.idempotencyKey])).to.deep.equal([
        [1, 'k1'],
        [2, 'k2'],
      ]);
      await queue.commit(batch([approval('R2')]), commitContext());
      expect((await queue.listOutbox('pending')).map((e) => e.id)).to.deep.equal([4]);
      const due = await queue.dueReminders({ lastBefore: new Date(NOW.getTime() - 1), maxReminders: 3, notBefore: new Date(0) });
      expect(due.map((c) => [c.approval.key, c.approver.sourceUserId, c.sent, c.lastAt])).to.deep.equal([[body.key, 'grace', 0, body.queuedAt]]);
      const waiting = await queue.listForApprover('grace@acme.test', { notBefore: new Date(0) });
      expect(
        waiting.map((a) => a.key),
        'the approval queued before the upgrade is listed too',
      ).to.have.members([body.key, approval('R2').key]);
    } finally {
      await queue.close();
      old.remove();
      queue = await opened(store.file);
    }
  });

  it('reads a body an older version stored with one "details" bag as content and sourceData, unchanged', async () => {
    await queue.commit(batch([withContent]), commitContext());
    const db = new Database(store.file);
    for (const table of ['approvals', 'approval_list']) {
      const key = table === 'approvals' ? 'key' : 'approval_key';
      const row = db.prepare(`SELECT body FROM ${table} WHERE ${key} = ?`).get(withContent.key) as { body: string };
      db.prepare(`UPDATE ${table} SET body = ? WHERE ${key} = ?`).run(JSON.stringify(legacyBody(JSON.parse(row.body))), withContent.key);
    }
    db.close();
    expect(inspect(store.file, (d) => d.prepare("SELECT json_type(body, '$.details') AS t FROM approvals").get())).to.deep.equal({ t: 'object' });

    const read = (await queue.get(withContent.key))!;
    expect(read).to.not.have.property('details');
    expect(read.content).to.deep.equal(withContent.content);
    expect(read.sourceData).to.deep.equal(withContent.sourceData);
    const [listed] = await queue.listForApprover('grace@acme.test', { notBefore: new Date(0) });
    expect(listed).to.deep.equal(read);
    // The fingerprint is computed as before the split, so the same version is no change at all.
    expect(await queue.commit(batch([withContent]), commitContext())).to.deep.include({ unchanged: 1, updated: 0 });
    // A sweep's copy (nothing loaded) keeps what the old row had.
    const swept = { ...withContent, title: 'Renamed', content: undefined, sourceData: undefined };
    expect(await queue.commit(batch([swept]), commitContext())).to.deep.include({ updated: 1 });
    expect(await queue.get(withContent.key)).to.deep.include({ title: 'Renamed', content: withContent.content, sourceData: withContent.sourceData });
  });

  it('creates the directory of a database file that does not exist yet', async () => {
    const file = join(store.dir, 'data', 'nested', 'approvals.db');
    const nested = await opened(file);
    await nested.close();

    expect(existsSync(file)).to.equal(true);
  });

  it('never gives two connections to one file the same outbox entry', async () => {
    await queue.commit(batch([approval('R1'), approval('R2'), approval('R3')]), commitContext({ channels: ['console', 'slack'] }));
    const second = await opened(store.file);
    try {
      const claims = await Promise.all([0, 1, 2, 3].map((i) => (i % 2 ? second : queue).claimOutbox(2, NOW, 60_000)));
      const ids = claims.flat().map((e) => e.id);

      expect(ids).to.have.length(6);
      expect(new Set(ids).size).to.equal(6);
    } finally {
      await second.close();
    }
  });

  it('never gives two connections to one file the same trigger', async () => {
    await queue.addTriggers(
      SOURCE,
      Array.from({ length: 12 }, (_, i) => ({ id: `e${i}`, externalId: `R${i}`, receivedAt: NOW.toISOString() })),
    );
    const second = await opened(store.file);
    try {
      const claims = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => (i % 2 ? second : queue).claimTriggers(SOURCE, 2, NOW, 60_000)));
      const seqs = claims.flat().map((t) => t.seq);

      expect(seqs).to.have.length(12);
      expect(new Set(seqs).size).to.equal(12);
    } finally {
      await second.close();
    }
  });
});

describe('sqlite queue plugin module', () => {
  it('binds ApprovalQueue to a single SqliteApprovalQueue on the configured path, relative to baseDir', async () => {
    const container = new Container();
    await container.loadAsync(sqliteQueueModule({ instanceId: 'sqlite', config: { path: 'data/queue.db' }, baseDir: '/srv/approvals' }));

    const queue = container.get(ApprovalQueue);
    expect(queue).to.be.instanceOf(SqliteApprovalQueue);
    expect((queue as SqliteApprovalQueue).path).to.equal('/srv/approvals/data/queue.db');
    expect(container.get(ApprovalQueue)).to.equal(queue);
  });

  it('defaults the path to approvals.db', async () => {
    const container = new Container();
    await container.loadAsync(sqliteQueueModule({ instanceId: 'sqlite', config: {}, baseDir: '/srv/approvals' }));

    expect(container.get(SqliteApprovalQueue).path).to.equal('/srv/approvals/approvals.db');
  });

  /** The queue a deployment naming only `path` gets: plugin.json's schema defaults applied, as the host does. */
  async function deployedQueue(dir: string, config: Record<string, unknown>): Promise<SqliteApprovalQueue> {
    const d = loadDeployment(undefined, { raw: { queue: { adapter: 'sqlite', config: { path: join(dir, 'q.db'), ...config } }, sources: [] }, env: {} });
    const container = new Container();
    await container.loadAsync(sqliteQueueModule({ instanceId: 'sqlite', config: d.queue.config, baseDir: dir }));
    const queue = container.get(SqliteApprovalQueue);
    await queue.init();
    return queue;
  }
  const pragma = (queue: SqliteApprovalQueue, name: string) => (queue as unknown as { db: Database.Database }).db.pragma(name, { simple: true });

  it('reads a new queue through a memory map by default on a 64-bit platform (SQLite clamps the ceiling to its compiled maximum)', async function () {
    if (DEFAULT_MMAP_MB === 0) this.skip(); // a 32-bit platform: off by design
    const { dir, remove } = scratch();
    const queue = await deployedQueue(dir, {});
    try {
      expect(DEFAULT_MMAP_MB).to.equal(2048);
      expect(pragma(queue, 'mmap_size')).to.equal(0x7fff0000);
      expect(pragma(queue, 'cache_size')).to.equal(-2 * 1024);
    } finally {
      await queue.close();
      remove();
    }
  });

  it('keeps an explicit mmapSizeMB of 0 as an override: no memory map', async () => {
    const { dir, remove } = scratch();
    const queue = await deployedQueue(dir, { mmapSizeMB: 0 });
    try {
      expect(pragma(queue, 'mmap_size')).to.equal(0);
    } finally {
      await queue.close();
      remove();
    }
  });

  it('applies the configured page cache and memory map to its connection', async () => {
    const { dir, remove } = scratch();
    const container = new Container();
    await container.loadAsync(sqliteQueueModule({ instanceId: 'sqlite', config: { path: 'q.db', cacheSizeMB: 8, mmapSizeMB: 64 }, baseDir: dir }));
    const queue = container.get(SqliteApprovalQueue);
    await queue.init();
    try {
      const db = (queue as unknown as { db: Database.Database }).db;
      expect(db.pragma('cache_size', { simple: true })).to.equal(-8 * 1024);
      expect(db.pragma('mmap_size', { simple: true })).to.equal(64 * 1024 * 1024);
    } finally {
      await queue.close();
      remove();
    }
  });
});
