import type { PoolClient } from 'pg';

/**
 * The schema, one step per version: `MIGRATIONS[n]` takes a schema from version n to n + 1.
 * A released step is never edited; a change is a new step at the end. Each step receives the
 * quoted schema name and qualifies every table with it, so no connection depends on `search_path`.
 *
 * The tables mirror the SQLite adapter's, with PostgreSQL types: `timestamptz` for times, `jsonb`
 * for bodies, identity columns for ids. Keys and ids compare in byte order (`COLLATE "C"`), as
 * they do in SQLite and in JavaScript, whatever the database's default collation is.
 */
export const MIGRATIONS: readonly ((schema: string) => string)[] = [
  (s) => `
  CREATE TABLE ${s}.approvals (
    key text COLLATE "C" PRIMARY KEY,
    source text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    external_id text NOT NULL,
    status text NOT NULL,
    revision integer NOT NULL,
    fingerprint text NOT NULL,
    source_updated_at timestamptz NOT NULL,
    queued_at timestamptz NOT NULL,
    body jsonb NOT NULL
  );
  CREATE INDEX approvals_by_time ON ${s}.approvals (source_updated_at DESC, key DESC);
  CREATE INDEX approvals_by_source ON ${s}.approvals (source, source_updated_at DESC, key DESC);

  -- source and source_updated_at are copies of the approval's, so "what is waiting on me?" is one
  -- range scan of approval_approvers_by_email (index-only for its filters), already in the order
  -- it is returned, plus one primary-key probe per returned approval.
  CREATE TABLE ${s}.approval_approvers (
    approval_key text COLLATE "C" NOT NULL REFERENCES ${s}.approvals (key) ON DELETE CASCADE,
    source_user_id text COLLATE "C" NOT NULL,
    email text COLLATE "C", -- lowercased; NULL while the approver is unresolved
    source text COLLATE "C" NOT NULL,
    source_updated_at timestamptz NOT NULL,
    PRIMARY KEY (approval_key, source_user_id)
  );
  CREATE INDEX approval_approvers_by_email
    ON ${s}.approval_approvers (email, source_updated_at DESC, approval_key DESC) INCLUDE (source);
  CREATE INDEX approval_approvers_by_user ON ${s}.approval_approvers (source, source_user_id);

  CREATE TABLE ${s}.cursors (
    source text COLLATE "C" PRIMARY KEY,
    cursor text NOT NULL
  );

  -- Outbox rows outlive their approval: a close is delivered after the row is gone.
  CREATE TABLE ${s}.outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    approval_key text COLLATE "C" NOT NULL,
    source text COLLATE "C" NOT NULL,
    revision integer NOT NULL,
    channel text COLLATE "C" NOT NULL,
    approver jsonb NOT NULL,
    approver_id text COLLATE "C" NOT NULL,
    action text NOT NULL CHECK (action IN ('notify', 'update', 'close')),
    outcome text,
    card jsonb NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL UNIQUE,
    state text NOT NULL CHECK (state IN ('pending', 'parked', 'inflight', 'delivered', 'superseded', 'dead')),
    attempts integer NOT NULL DEFAULT 0, -- claims so far, the current one included
    last_error text,
    next_attempt_at timestamptz NOT NULL,
    claimed_at timestamptz,
    settled_at timestamptz,
    created_at timestamptz NOT NULL
  );
  CREATE INDEX outbox_by_state ON ${s}.outbox (state, id);
  CREATE INDEX outbox_parked ON ${s}.outbox (source, approver_id) WHERE state = 'parked';
  -- A delivery supersedes the older entries still owed to the same person on the same channel;
  -- without this index that is a scan of every owed entry, and a first sync owes one per approval.
  CREATE INDEX outbox_owed ON ${s}.outbox (approval_key, approver_id, channel) WHERE state IN ('pending', 'parked');

  CREATE TABLE ${s}.receipts (
    approval_key text COLLATE "C" NOT NULL,
    approver_id text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    ref text NOT NULL,
    outbox_id bigint NOT NULL,
    PRIMARY KEY (approval_key, approver_id, channel)
  );

  CREATE TABLE ${s}.source_state (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (namespace, key)
  );

  CREATE TABLE ${s}.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    key text,
    detail text
  );
  `,
  // 2: reminders. The outbox takes two more actions and a digest's list of cards. `reminders`
  // holds, per approver of a queued approval, how many reminders its current generation has had
  // and when the approver was last notified or reminded; approvers queued before this step start
  // at their approval's queued_at.
  (s) => `
  ALTER TABLE ${s}.outbox DROP CONSTRAINT outbox_action_check;
  ALTER TABLE ${s}.outbox ADD CONSTRAINT outbox_action_check CHECK (action IN ('notify', 'update', 'close', 'remind', 'digest'));
  ALTER TABLE ${s}.outbox ADD COLUMN digest jsonb;

  CREATE TABLE ${s}.reminders (
    approval_key text COLLATE "C" NOT NULL REFERENCES ${s}.approvals (key) ON DELETE CASCADE,
    approver_id text COLLATE "C" NOT NULL,
    generation text COLLATE "C" NOT NULL,
    sent integer NOT NULL,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (approval_key, approver_id)
  );
  -- "Due" is one range of last_at per reminder count below the maximum: sent = ANY(…) AND last_at <= $1.
  CREATE INDEX reminders_due ON ${s}.reminders (sent, last_at, approval_key, approver_id) INCLUDE (generation);
  INSERT INTO ${s}.reminders (approval_key, approver_id, generation, sent, last_at)
    SELECT p.approval_key, p.source_user_id, a.body->>'generation', 0, a.queued_at
    FROM ${s}.approval_approvers p JOIN ${s}.approvals a ON a.key = p.approval_key;
  `,
  // 3: a claim skips an entry while an older one to the same person, approval and channel is unsettled.
  (s) => `
  CREATE INDEX outbox_unsettled ON ${s}.outbox (approval_key, approver_id, channel, id) WHERE state IN ('pending', 'parked', 'inflight');
  `,
  // 4: the feed of what was delivered on a channel, which web inbox pages on every host follow.
  (s) => `
  CREATE INDEX outbox_delivered ON ${s}.outbox (channel, settled_at, id) WHERE state = 'delivered';
  `,
  // 5: settled entries are deleted after delivery.keepDays, oldest first.
  (s) => `
  CREATE INDEX outbox_settled ON ${s}.outbox (settled_at) WHERE state IN ('delivered', 'superseded', 'dead');
  `,
  // 6: triggers, the push events stored before they are acknowledged. The unique (source, trigger_id)
  // is the duplicate check: an insert that meets it does nothing. A settled row stays, without its
  // data, only so its id is still recognised, until purgeTriggers deletes it. claimable_at is
  // -infinity until the first claim, then the lease's end or the retry time.
  (s) => `
  CREATE TABLE ${s}.source_triggers (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text COLLATE "C" NOT NULL,
    trigger_id text COLLATE "C" NOT NULL,
    external_id text NOT NULL,
    received_at timestamptz NOT NULL,
    data jsonb, -- NULL when the trigger has none, and once it is settled
    attempts integer NOT NULL DEFAULT 0, -- claims so far, the current one included
    claimable_at timestamptz NOT NULL DEFAULT '-infinity',
    settled_at timestamptz,
    UNIQUE (source, trigger_id)
  );
  -- A claim and the pending count read only unsettled rows, however many settled ids are remembered.
  CREATE INDEX source_triggers_pending ON ${s}.source_triggers (source, claimable_at, seq) WHERE settled_at IS NULL;
  CREATE INDEX source_triggers_settled ON ${s}.source_triggers (settled_at) WHERE settled_at IS NOT NULL;
  `,
];

/** `"name"`: only names matching `^[a-z_][a-z0-9_]*$` reach SQL, so quoting is all the escaping needed. */
export function quoteSchema(schema: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`schema "${schema}" must match ^[a-z_][a-z0-9_]*$`);
  return `"${schema}"`;
}

/**
 * Brings the schema to the latest version in one transaction, on `client` (outside any
 * transaction). A transaction-scoped advisory lock per schema makes hosts that start together
 * wait for each other, so no step is applied twice; PostgreSQL's DDL is transactional, so a step
 * and its `schema_migrations` row commit together or not at all. Returns the versions before and after.
 */
export async function migrate(client: PoolClient, schema: string, lockKey: string): Promise<{ from: number; to: number }> {
  const s = quoteSchema(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKey]);
    // Looked up first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the database even
    // when the schema exists, and a least-privileged role may only own a schema made for it.
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const { rows } = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${s}.schema_migrations`);
    const from = rows[0]?.version ?? 0;
    if (from > MIGRATIONS.length) {
      throw new Error(`schema ${schema}: schema version ${from} is newer than this build knows (${MIGRATIONS.length})`);
    }
    for (const [i, step] of MIGRATIONS.slice(from).entries()) {
      await client.query(step(s));
      await client.query(`INSERT INTO ${s}.schema_migrations (version) VALUES ($1)`, [from + i + 1]);
    }
    await client.query('COMMIT');
    return { from, to: MIGRATIONS.length };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
