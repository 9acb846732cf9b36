import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { Container } from '../../core/di.js';
import { ApprovalQueue } from '../../core/contracts/approval-queue.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { PluginCatalog } from '../../core/host/plugin-catalog.js';
import type { Approval } from '../../core/model/approval.js';
import type { ChangeBatch, CommitResult, OutboxEntry } from '../../core/model/queue-types.js';
import { MIGRATIONS } from '../../adapters/queue-postgres/migrations.js';
import postgresQueueModule from '../../adapters/queue-postgres/module.js';
import { leaseLockKey, PostgresApprovalQueue } from '../../adapters/queue-postgres/postgres-approval-queue.js';
import type { Lease } from '../../core/contracts/approval-queue.js';
import { describeApprovalQueueContract } from '../../core/testing/index.js';
import { planReminders } from '../../core/pipeline/reminder-scheduler.js';
import { DAY_MS, NOW, SOURCE, approval, approver, batch, commitContext, expectRejection } from '../support/queue-fixtures.js';
import { legacyBody, withContent } from '../support/legacy-body.js';

/** CI starts PostgreSQL here; another server can be named with APPROVALS_HUB_TEST_PG. */
const DATABASE_URL = process.env.APPROVALS_HUB_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Other runs share the database: every store of this run is a schema named `<RUN>_<n>`, dropped at the end. */
const RUN = `ah_test_${randomBytes(4).toString('hex')}`;
const MINUTE_MS = 60_000;
let stores = 0;

const freshSchema = (): string => `${RUN}_${++stores}`;

async function opened(schema: string, poolSize = 4): Promise<PostgresApprovalQueue> {
  const queue = new PostgresApprovalQueue({ connectionString: DATABASE_URL, schema, poolSize });
  await queue.init();
  return queue;
}

/** The URL without its password, for messages. */
function shown(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable connection string)';
  }
}

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('PostgreSQL queue adapter', function () {
  /** The tests' own connections: inspect, lock, terminate, drop. */
  let admin: pg.Pool | undefined;
  const db = (): pg.Pool => {
    if (!admin) throw new Error('PostgreSQL is not connected');
    return admin;
  };
  const dropSchema = async (schema: string): Promise<void> => {
    await db().query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  };

  before(async function () {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3, connectionTimeoutMillis: 5_000 });
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new Error(
        `PostgreSQL is not reachable at ${shown(DATABASE_URL)}: ${(error as Error).message}. ` +
          'The PostgreSQL queue tests need a server: start one (CI does), or set APPROVALS_HUB_TEST_PG to a connection string.',
      );
    }
    admin = pool;
  });

  after(async () => {
    if (!admin) return;
    // Every schema of this run, including one a failed test left behind.
    const { rows } = await admin.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)', [`${RUN}_`]);
    for (const { nspname } of rows) await dropSchema(nspname);
    await admin.end();
    admin = undefined;
  });

  describeApprovalQueueContract('postgres', async () => {
    const schema = freshSchema();
    let queue = await opened(schema);
    return {
      queue,
      reopen: async () => {
        await queue.close();
        queue = await opened(schema);
        return queue;
      },
      cleanup: async () => {
        await queue.close();
        await dropSchema(schema);
      },
    };
  });

  describe('PostgresApprovalQueue', () => {
    let schema: string;
    let queue: PostgresApprovalQueue;
    /** Further queues on the same schema ("other hosts"), closed after each test. */
    let others: PostgresApprovalQueue[];
    const ctx = commitContext();

    const host = async (): Promise<PostgresApprovalQueue> => {
      const other = await opened(schema);
      others.push(other);
      return other;
    };
    const table = (name: string): string => `"${schema}".${name}`;
    const migrations = async (of = schema): Promise<number[]> =>
      (await db().query<{ version: number }>(`SELECT version FROM "${of}".schema_migrations ORDER BY version`)).rows.map((r) => r.version);

    beforeEach(async () => {
      schema = freshSchema();
      others = [];
      queue = await opened(schema);
    });
    afterEach(async () => {
      await Promise.all([queue, ...others].map((q) => q.close()));
      await dropSchema(schema);
    });

    describe('schema', () => {
      it('records every migration once in schema_migrations', async () => {
        await queue.init();
        await (await host()).init();

        expect(await migrations()).to.deep.equal(MIGRATIONS.map((_, i) => i + 1));
      });

      it('applies each migration once when hosts start together on a new schema', async () => {
        const fresh = freshSchema();
        const starting = [0, 1, 2, 3].map(() => new PostgresApprovalQueue({ connectionString: DATABASE_URL, schema: fresh, poolSize: 1 }));
        others.push(...starting);
        await Promise.all(starting.map((q) => q.init()));

        expect(await migrations(fresh)).to.deep.equal(MIGRATIONS.map((_, i) => i + 1));
        await starting[0]!.commit(batch([approval('R1')]), ctx);
        expect(await starting[3]!.get(approval('R1').key)).to.include({ revision: 1 });
      });

      it('refuses a schema written by a newer version', async () => {
        await db().query(`INSERT INTO ${table('schema_migrations')} (version) VALUES ($1)`, [MIGRATIONS.length + 1]);

        const newer = new PostgresApprovalQueue({ connectionString: DATABASE_URL, schema, poolSize: 1 });
        let error: unknown;
        await newer.init().catch((e: unknown) => (error = e));
        expect(String(error)).to.match(/schema version \d+ is newer/);
        await newer.close();
      });

      it('keeps two schemas on one database apart', async () => {
        const elsewhere = await opened(freshSchema());
        others.push(elsewhere);
        await queue.commit(batch([approval('R1')], { cursor: 'c1' }), ctx);

        expect(await elsewhere.get(approval('R1').key)).to.equal(undefined);
        expect(await elsewhere.getCursor(SOURCE)).to.equal(undefined);
        expect(await elsewhere.listOutbox('pending')).to.deep.equal([]);
      });

      it('reads a body an older version stored with one "details" bag as content and sourceData, unchanged', async () => {
        await queue.commit(batch([withContent]), ctx);
        const { rows } = await db().query<{ body: Record<string, unknown> }>(`SELECT body FROM ${table('approvals')} WHERE key = $1`, [withContent.key]);
        await db().query(`UPDATE ${table('approvals')} SET body = $1::jsonb WHERE key = $2`, [JSON.stringify(legacyBody(rows[0]!.body)), withContent.key]);

        const read = (await queue.get(withContent.key))!;
        expect(read).to.not.have.property('details');
        expect(read.content).to.deep.equal(withContent.content);
        expect(read.sourceData).to.deep.equal(withContent.sourceData);
        const [listed] = await queue.listForApprover('grace@acme.test', { notBefore: new Date(0) });
        expect(listed).to.deep.equal(read);
        expect(await queue.commit(batch([withContent]), ctx)).to.deep.include({ unchanged: 1, updated: 0 });
        const swept = { ...withContent, title: 'Renamed', content: undefined, sourceData: undefined };
        expect(await queue.commit(batch([swept]), ctx)).to.deep.include({ updated: 1 });
        expect(await queue.get(withContent.key)).to.deep.include({ title: 'Renamed', content: withContent.content, sourceData: withContent.sourceData });
      });

      it('refuses a schema name that is not a plain lower-case identifier', () => {
        expect(() => new PostgresApprovalQueue({ connectionString: DATABASE_URL, schema: 'x"; DROP TABLE y; --' })).to.throw(/must match/);
      });
    });

    describe('transactions and storage', () => {
      it('writes nothing from a batch that fails after its first rows are written', async () => {
        await queue.commit(batch([approval('R1')], { cursor: 'c1' }), ctx);
        // The outbox insert comes after the approval rows in the transaction; make it fail there.
        await db().query(`
          CREATE FUNCTION ${table('refuse')}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$;
          CREATE TRIGGER refuse_outbox BEFORE INSERT ON ${table('outbox')} FOR EACH ROW EXECUTE FUNCTION ${table('refuse')}();`);

        let error: unknown;
        await queue.commit(batch([approval('R2')], { cursor: 'c2', audit: [{ actor: 'ops', action: 'x' }] }), ctx).catch((e: unknown) => (error = e));

        expect(String(error)).to.contain('disk says no');
        expect(await queue.get(approval('R2').key)).to.equal(undefined);
        expect(await queue.getCursor(SOURCE)).to.equal('c1');
        expect(await queue.listAudit()).to.deep.equal([]);
        expect((await db().query(`SELECT count(*)::int AS n FROM ${table('approval_approvers')}`)).rows).to.deep.equal([{ n: 1 }]);
      });

      it('stores none of a push when a trigger past the first statement cannot be stored, and rejects so it is not acknowledged', async () => {
        // More triggers than one statement inserts, the refused one last: the first statement's rows must go too.
        const push = Array.from({ length: 1_001 }, (_, i) => ({ id: `e${i}`, externalId: `R${i}`, receivedAt: NOW.toISOString() }));
        await db().query(`
          CREATE FUNCTION ${table('refuse')}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$;
          CREATE TRIGGER refuse_trigger BEFORE INSERT ON ${table('source_triggers')} FOR EACH ROW WHEN (NEW.trigger_id = 'e1000') EXECUTE FUNCTION ${table('refuse')}();`);

        let error: unknown;
        await queue.addTriggers(SOURCE, push).catch((e: unknown) => (error = e));

        expect(String(error)).to.contain('disk says no');
        expect(await queue.pendingTriggers(SOURCE)).to.deep.equal({ count: 0, oldestReceivedAt: undefined });
        expect((await db().query(`SELECT count(*)::int AS n FROM ${table('source_triggers')}`)).rows).to.deep.equal([{ n: 0 }]);
      });

      it('returns source times in toISOString form, whatever offset the source wrote', async () => {
        await queue.commit(batch([approval('R1', { sourceUpdatedAt: '2025-06-01T14:00:00+02:00' })]), ctx);

        expect(await queue.keys(SOURCE)).to.deep.equal([{ key: approval('R1').key, externalId: 'R1', sourceUpdatedAt: '2025-06-01T12:00:00.000Z' }]);
      });

      it('stores a NUL character, which PostgreSQL text cannot hold, as U+FFFD instead of failing the batch', async () => {
        await queue.commit(batch([approval('R1', { title: 'Trip\u0000Berlin' })]), ctx);

        expect(await queue.get(approval('R1').key)).to.include({ title: 'Trip\uFFFDBerlin' });
        expect((await queue.listOutbox('pending'))[0]?.card).to.include({ title: 'Trip\uFFFDBerlin' });
      });

      it('answers listForApprover from the e-mail index, already in order', async () => {
        const people = Array.from({ length: 40 }, (_, i) => approver(`p${i}`));
        const many = Array.from({ length: 4_000 }, (_, i) =>
          approval(`R${i}`, { approvers: [people[i % people.length]!], sourceUpdatedAt: new Date(NOW.getTime() - DAY_MS + i * 1000).toISOString() }),
        );
        for (let i = 0; i < many.length; i += 1_000) await queue.commit(batch(many.slice(i, i + 1_000)), ctx);
        await db().query(`ANALYZE ${table('approvals')}; ANALYZE ${table('approval_approvers')}`);

        const { rows } = await db().query<{ 'QUERY PLAN': unknown }>(
          `EXPLAIN (FORMAT JSON)
           SELECT a.body FROM ${table('approval_approvers')} p JOIN ${table('approvals')} a ON a.key = p.approval_key
           WHERE p.email = 'p7@acme.test' AND p.source_updated_at >= '2025-05-01T00:00:00Z' AND a.status = 'pending'
           ORDER BY p.source_updated_at DESC, p.approval_key DESC LIMIT 50`,
        );
        const plan = JSON.stringify(rows[0]?.['QUERY PLAN']);
        expect(plan).to.contain('"Index Name":"approval_approvers_by_email"').and.not.contain('"Node Type":"Sort"');
        expect((await queue.listForApprover('p7@acme.test', { notBefore: ctx.notBefore, limit: 3 })).map((r) => r.externalId)).to.deep.equal([
          'R3967',
          'R3927',
          'R3887',
        ]);
      });
    });

    describe('several hosts on one schema', () => {
      const reports = (prefix: string, n: number): Approval[] =>
        Array.from({ length: n }, (_, i) => approval(`${prefix}${i}`, { approvers: [approver('grace'), approver('alan')] }));
      const slices = (items: readonly Approval[], size: number): Approval[][] =>
        Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
      const run = async (q: PostgresApprovalQueue, batches: readonly ChangeBatch[]) => {
        const results = [];
        for (const b of batches) results.push(await q.commit(b, ctx));
        return results;
      };
      const sum = (results: readonly CommitResult[], field: 'inserted' | 'updated' | 'unchanged' | 'outbox'): number =>
        results.reduce((n, r) => n + r[field], 0);
      const allOutbox = async (): Promise<OutboxEntry[]> =>
        [...(await queue.listOutbox('pending')), ...(await queue.listOutbox('inflight'))].sort((a, b) => a.id - b.id);

      it('queues each approval once and owes one notify per approver when two hosts commit the same new approvals at once', async () => {
        const second = await host();
        const all = reports('R', 120);
        // Opposite orders, overlapping batches: the hosts meet on every key.
        const forward = slices(all, 30).map((s) => batch(s));
        const backward = slices([...all].reverse(), 40).map((s) => batch(s));

        const [a, b] = await Promise.all([run(queue, forward), run(second, backward)]);

        expect(sum([...a, ...b], 'inserted')).to.equal(120);
        expect(sum([...a, ...b], 'unchanged')).to.equal(120);
        expect(sum([...a, ...b], 'outbox')).to.equal(240);
        expect(await queue.count({ notBefore: ctx.notBefore })).to.equal(120);
        const entries = await allOutbox();
        expect(entries).to.have.length(240);
        const owed = new Set(entries.map((e) => `${e.approvalKey} ${e.approver.sourceUserId} ${e.action}`));
        expect(owed.size).to.equal(240);
        for (const e of entries) {
          const row = await queue.get(e.approvalKey);
          expect(e.idempotencyKey).to.contain(`#${row?.generation}.1:`);
        }
      });

      it('bumps the revision once and owes one update per approver when two hosts commit the same change at once', async () => {
        const second = await host();
        const all = reports('R', 60);
        await queue.commit(batch(all), ctx);
        const changed = all.map((a) => ({ ...a, title: `${a.title} (corrected)`, sourceUpdatedAt: new Date(NOW.getTime() - MINUTE_MS).toISOString() }));

        const [a, b] = await Promise.all([
          run(
            queue,
            slices(changed, 20).map((s) => batch(s)),
          ),
          run(
            second,
            slices([...changed].reverse(), 15).map((s) => batch(s)),
          ),
        ]);

        expect(sum([...a, ...b], 'updated')).to.equal(60);
        expect(sum([...a, ...b], 'unchanged')).to.equal(60);
        expect((await queue.list({ notBefore: ctx.notBefore })).every((r) => r.revision === 2)).to.equal(true);
        const updates = (await allOutbox()).filter((e) => e.action === 'update');
        expect(updates).to.have.length(120);
        expect(new Set(updates.map((e) => e.idempotencyKey)).size).to.equal(120);
      });

      it('loses no row and no outbox entry when hosts commit different approvals at once', async () => {
        const hosts = [queue, await host(), await host()];
        const work = hosts.map((q, i) => slices(reports(`H${i}-`, 150), 10).map((s, j) => batch(s, { cursor: `h${i}-${j}` })));

        await Promise.all(hosts.map((q, i) => run(q, work[i]!)));

        expect(await queue.count({ notBefore: ctx.notBefore })).to.equal(450);
        const entries = await allOutbox();
        expect(entries).to.have.length(900);
        expect(new Set(entries.map((e) => e.id)).size).to.equal(900);
        expect(await queue.listForApprover('grace@acme.test', { notBefore: ctx.notBefore })).to.have.length(450);
      });

      it('spends each reminder once when two hosts schedule the same reminders at once', async () => {
        await queue.commit(batch(reports('R', 20)), ctx);
        const at = new Date(NOW.getTime() + DAY_MS);
        const settings = { afterHours: 24, maxReminders: 3, quietHours: { start: '00:00', end: '00:00' }, defaultTimeZone: 'UTC' };
        const schedule = async (q: PostgresApprovalQueue) => {
          const due = await q.dueReminders({ lastBefore: NOW, maxReminders: 3, notBefore: new Date(0) });
          return q.scheduleReminders(planReminders(due, settings, at, { channels: ['console'], render: ctx.render }), at);
        };
        const second = await host();
        const written = await Promise.all([schedule(queue), schedule(second), schedule(queue), schedule(second)]);

        // 20 reports, each with two approvers: 40 reminders, each written by one host only.
        expect(written.reduce((a, b) => a + b, 0)).to.equal(40);
        const reminders = (await queue.listOutbox('pending')).filter((e) => e.action === 'remind');
        expect(new Set(reminders.map((e) => `${e.approvalKey} ${e.approver.sourceUserId}`)).size).to.equal(40);
        expect(reminders).to.have.length(40);
        const counts = await db().query<{ sent: number; n: number }>(`SELECT sent, count(*)::int AS n FROM ${table('reminders')} GROUP BY sent`);
        expect(counts.rows).to.deep.equal([{ sent: 1, n: 40 }]);
      });

      it('never gives two hosts claiming at once the same outbox entry', async () => {
        await queue.commit(batch(reports('R', 100)), commitContext({ channels: ['console', 'slack'] }));
        const claimers = [queue, await host(), await host()];
        const drain = async (q: PostgresApprovalQueue): Promise<number[]> => {
          const ids: number[] = [];
          for (;;) {
            const claimed = await q.claimOutbox(7, NOW, MINUTE_MS);
            if (claimed.length === 0) return ids;
            ids.push(...claimed.map((e) => e.id));
          }
        };

        const ids = (await Promise.all(claimers.map(drain))).flat();

        expect(ids).to.have.length(400);
        expect(new Set(ids).size).to.equal(400);
        expect(await queue.listOutbox('pending')).to.deep.equal([]);
      });

      it('never gives two hosts claiming at once the same trigger', async () => {
        const push = (from: number) =>
          Array.from({ length: 100 }, (_, i) => ({ id: `e${from + i}`, externalId: `R${from + i}`, receivedAt: NOW.toISOString() }));
        for (let from = 0; from < 300; from += 100) await queue.addTriggers(SOURCE, push(from));
        const claimers = [queue, await host(), await host()];
        const drain = async (q: PostgresApprovalQueue): Promise<number[]> => {
          const seqs: number[] = [];
          for (;;) {
            const claimed = await q.claimTriggers(SOURCE, 7, NOW, MINUTE_MS);
            if (claimed.length === 0) return seqs;
            seqs.push(...claimed.map((t) => t.seq));
          }
        };

        const seqs = (await Promise.all(claimers.map(drain))).flat();

        expect(seqs).to.have.length(300);
        expect(new Set(seqs).size).to.equal(300);
        expect(await queue.pendingTriggers(SOURCE)).to.include({ count: 300 });
      });

      it('stores each trigger once when two hosts add the same pushes at once', async () => {
        const push = Array.from({ length: 200 }, (_, i) => ({ id: `e${i}`, externalId: `R${i}`, receivedAt: NOW.toISOString() }));
        const second = await host();
        // Overlapping pushes in opposite orders, as redeliveries racing the first delivery.
        const forward = [0, 50, 100, 150].map((from) => push.slice(from, from + 60));
        const backward = [0, 50, 100, 150].map((from) => [...push].reverse().slice(from, from + 60));
        const results = await Promise.all([...forward.map((p) => queue.addTriggers(SOURCE, p)), ...backward.map((p) => second.addTriggers(SOURCE, p))]);

        expect(results.reduce((n, r) => n + r.added, 0)).to.equal(200);
        expect(results.reduce((n, r) => n + r.duplicates, 0)).to.equal([...forward, ...backward].flat().length - 200);
        const claimed = await queue.claimTriggers(SOURCE, 1_000, NOW, MINUTE_MS);
        expect(new Set(claimed.map((t) => t.id)).size).to.equal(200);
        expect(claimed).to.have.length(200);
      });

      it('skips a trigger another transaction holds locked instead of waiting for it', async () => {
        await queue.addTriggers(SOURCE, [
          { id: 'e1', externalId: 'R1', receivedAt: NOW.toISOString() },
          { id: 'e2', externalId: 'R2', receivedAt: NOW.toISOString() },
        ]);
        const locker = await db().connect();
        try {
          await locker.query('BEGIN');
          await locker.query(`SELECT seq FROM ${table('source_triggers')} WHERE trigger_id = 'e1' FOR UPDATE`);

          const claimed = await queue.claimTriggers(SOURCE, 10, NOW, MINUTE_MS);

          expect(claimed.map((t) => t.id)).to.deep.equal(['e2']);
        } finally {
          await locker.query('ROLLBACK');
          locker.release();
        }
        expect((await queue.claimTriggers(SOURCE, 10, NOW, MINUTE_MS)).map((t) => t.id)).to.deep.equal(['e1']);
      });

      it('skips an outbox entry another transaction holds locked instead of waiting for it', async () => {
        await queue.commit(batch(reports('R', 3)), ctx);
        const [first] = await queue.listOutbox('pending', 1);
        const locker = await db().connect();
        try {
          await locker.query('BEGIN');
          await locker.query(`SELECT id FROM ${table('outbox')} WHERE id = $1 FOR UPDATE`, [first!.id]);

          const claimed = await queue.claimOutbox(10, NOW, MINUTE_MS);

          expect(claimed).to.have.length(5);
          expect(claimed.map((e) => e.id)).to.not.include(first!.id);
        } finally {
          await locker.query('ROLLBACK');
          locker.release();
        }
        expect((await queue.claimOutbox(10, NOW, MINUTE_MS)).map((e) => e.id)).to.deep.equal([first!.id]);
      });
    });

    describe('leases', () => {
      const NAME = 'source:concur-acme';
      let leases: Lease[];
      const holder = async (name = NAME): Promise<number> => {
        const { rows } = await db().query<{ pid: number }>(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted
             AND ((classid::bigint << 32) | objid::bigint) = $1::bigint`,
          [leaseLockKey(schema, name)],
        );
        expect(rows, 'one session holds the lease').to.have.length(1);
        return rows[0]!.pid;
      };
      const take = async (q: PostgresApprovalQueue, name = NAME): Promise<Lease | undefined> => {
        const lease = await q.acquireLease(name);
        if (lease) leases.push(lease);
        return lease;
      };

      beforeEach(() => {
        leases = [];
      });
      afterEach(async () => {
        await Promise.all(leases.map((l) => l.release()));
      });

      it('gives a lease to one holder at a time', async () => {
        const second = await host();
        const lease = await take(queue);

        expect(lease?.held()).to.equal(true);
        expect(lease?.name).to.equal(NAME);
        expect(await take(second)).to.equal(undefined);
        expect(await take(queue), 'a second lease of the same host').to.equal(undefined);
        expect((await take(second, 'source:concur-globex'))?.held()).to.equal(true);
      });

      it('hands the lease to another host once its holder releases it', async () => {
        const second = await host();
        const lease = await take(queue);
        await lease!.release();

        expect(lease!.held()).to.equal(false);
        expect((await take(second))?.held()).to.equal(true);
      });

      it('hands the lease to another host once the holder session is terminated, and tells the holder', async () => {
        const second = await host();
        const lease = await take(queue);
        await db().query('SELECT pg_terminate_backend($1)', [await holder()]);

        await eventually(() => !lease!.held(), 'the holder sees its lease lost');
        expect((await take(second))?.held()).to.equal(true);
        expect(await queue.count({ notBefore: ctx.notBefore }), 'the holder pool still works').to.equal(0);
      });

      it('hands the lease to another host once the holder process is killed', async () => {
        const second = await host();
        const child = holdLeaseInChild(schema, NAME);
        try {
          await child.held;
          expect(await take(second)).to.equal(undefined);

          child.process.kill('SIGKILL');
          await once(child.process, 'exit');

          let lease: Lease | undefined;
          await eventually(async () => (lease = await take(second)) !== undefined, 'the killed holder’s lock is freed');
          expect(lease?.held()).to.equal(true);
        } finally {
          child.process.kill('SIGKILL');
        }
      });

      it('releases its leases on close', async () => {
        const second = await host();
        const lease = await take(queue);
        await queue.close();

        expect(lease!.held()).to.equal(false);
        expect((await take(second))?.held()).to.equal(true);
        await expectRejection(queue.acquireLease('another'));
      });

      it('still serves queries while a lease keeps one of its connections', async () => {
        const small = await opened(schema, 2);
        others.push(small);
        await take(small);
        await small.commit(batch([approval('R1')]), ctx);

        expect(await small.get(approval('R1').key)).to.include({ revision: 1 });
        expect(await holder()).to.be.a('number');
      });
    });
  });
});

describe('postgres queue plugin', () => {
  const catalog = (): PluginCatalog => {
    const c = PluginCatalog.builtIn();
    const problems: string[] = [];
    // Outside a full build the manifest is read from the source tree.
    if (!c.get('postgres', 'queue')) c.addLocation(resolve(process.cwd(), 'adapters/queue-postgres'), process.cwd(), 'postgres', problems);
    expect(problems).to.deep.equal([]);
    return c;
  };
  const deploy = (config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
    loadDeployment(undefined, { raw: { queue: { adapter: 'postgres', config }, notifiers: [] }, catalog: catalog(), env });
  const problems = (config: Record<string, unknown>): string[] => {
    try {
      deploy(config);
    } catch (error) {
      return [...((error as { problems?: string[] }).problems ?? [String(error)])];
    }
    return [];
  };

  it('binds ApprovalQueue to a single PostgresApprovalQueue with the configured schema and pool size', async () => {
    const container = new Container();
    await container.loadAsync(
      postgresQueueModule({ instanceId: 'postgres', config: { connectionString: DATABASE_URL, schema: 'hub_a', poolSize: 3 }, baseDir: '.' }),
    );

    const queue = container.get(ApprovalQueue);
    expect(queue).to.be.instanceOf(PostgresApprovalQueue);
    expect(queue).to.include({ schema: 'hub_a', poolSize: 3 });
    expect(container.get(ApprovalQueue)).to.equal(queue);
    expect(container.get(PostgresApprovalQueue)).to.equal(queue);
  });

  it('defaults the schema to approvals_hub and the pool to 10 connections', () => {
    const d = deploy({});

    expect(d.queue.config).to.deep.equal({ connectionString: 'postgres://postgres@127.0.0.1:5432/test', schema: 'approvals_hub', poolSize: 10 });
  });

  it('accepts a connection string without a password as a literal', () => {
    expect(deploy({ connectionString: 'postgres://approvals@db.internal:5432/approvals' }).queue.config).to.include({
      connectionString: 'postgres://approvals@db.internal:5432/approvals',
    });
  });

  it('refuses a literal connection string that holds a password, naming the field', () => {
    for (const connectionString of ['postgres://approvals:hunter2@db.internal/approvals', 'postgres://db.internal/approvals?password=hunter2']) {
      expect(problems({ connectionString })).to.deep.equal([
        'queue.config.connectionString: must be a secret reference such as {"env": "NAME"} or {"file": "path"}, not a literal',
      ]);
    }
  });

  it('resolves a connection string given as a secret reference', () => {
    const d = deploy({ connectionString: { env: 'HUB_PG' } }, { HUB_PG: 'postgres://approvals:hunter2@db.internal/approvals' });

    expect(d.queue.config).to.include({ connectionString: 'postgres://approvals:hunter2@db.internal/approvals' });
  });

  it('refuses a schema that is not a plain lower-case identifier', () => {
    expect(problems({ schema: 'Approvals-Hub' })).to.deep.equal(['queue.config.schema: must match pattern "^[a-z_][a-z0-9_]*$"']);
  });
});

/**
 * Another host in a process of its own, holding `name` until it is killed: the only way to see
 * what happens to a lease whose holder dies without releasing it.
 */
function holdLeaseInChild(schema: string, name: string): { process: ChildProcess; held: Promise<void> } {
  const moduleUrl = new URL('../../adapters/queue-postgres/postgres-approval-queue.js', import.meta.url).href;
  const script = `
    const { PostgresApprovalQueue } = await import(process.env.MODULE_URL);
    const queue = new PostgresApprovalQueue({ connectionString: process.env.DATABASE_URL, schema: process.env.SCHEMA, poolSize: 2 });
    await queue.init();
    const lease = await queue.acquireLease(process.env.LEASE);
    process.stdout.write(lease ? 'held\\n' : 'refused\\n');
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, MODULE_URL: moduleUrl, DATABASE_URL, SCHEMA: schema, LEASE: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const held = new Promise<void>((resolveHeld, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('held\n')) resolveHeld();
      if (out.includes('refused\n')) reject(new Error('the child process could not take the lease'));
    });
    child.on('exit', (code) => reject(new Error(`the child process exited (${code}) before holding the lease: ${stderr}`)));
  });
  return { process: child, held };
}
