import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import pino from 'pino';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import { PostgresApprovalQueue } from '../../adapters/queue-postgres/postgres-approval-queue.js';
import { SqliteApprovalQueue } from '../../adapters/queue-sqlite/sqlite-approval-queue.js';
import { CredentialError } from '../../core/contracts/credential-store.js';
import { EncryptedCredentialStore, parseCredentialKey } from '../../core/host/credentials.js';
import { describeCredentialStoreContract } from '../contract/credential-store.contract.js';

const DATABASE_URL = process.env.APPROVALS_HUB_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `ah_cred_${randomBytes(4).toString('hex')}`;
let schemas = 0;
const silent = pino({ level: 'silent' });
const mode = (file: string): string => (statSync(file).mode & 0o777).toString(8).padStart(4, '0');

describeCredentialStoreContract('memory', async () => {
  const queue = new MemoryApprovalQueue();
  await queue.init();
  const key = (ns: string, k: string) => JSON.stringify([ns, k]);
  // The memory queue has no table: its state map is what it stores.
  const state = (queue as unknown as { state: Map<string, string> }).state;
  return {
    queues: [queue, queue],
    raw: async (ns, k) => state.get(key(ns, k)),
    writeRaw: async (ns, k, v) => void state.set(key(ns, k), v),
    cleanup: () => queue.close(),
  };
});

describeCredentialStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ah-cred-sqlite-'));
  const file = join(dir, 'approvals.db');
  const a = new SqliteApprovalQueue(file);
  const b = new SqliteApprovalQueue(file);
  await a.init();
  await b.init();
  const table = <T>(work: (db: Database.Database) => T): T => {
    const db = new Database(file, { timeout: 5000 });
    try {
      return work(db);
    } finally {
      db.close();
    }
  };
  return {
    queues: [a, b],
    raw: async (ns, k) =>
      table((db) => db.prepare<unknown[], { value: string }>('SELECT value FROM source_state WHERE namespace = ? AND key = ?').get(ns, k)?.value),
    writeRaw: async (ns, k, v) =>
      void table((db) =>
        db
          .prepare('INSERT INTO source_state (namespace, key, value) VALUES (?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value')
          .run(ns, k, v),
      ),
    cleanup: async () => {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeCredentialStoreContract('postgres', async () => {
  const schema = `${RUN}_${++schemas}`;
  const a = new PostgresApprovalQueue({ connectionString: DATABASE_URL, schema, poolSize: 3 });
  const b = new PostgresApprovalQueue({ connectionString: DATABASE_URL, schema, poolSize: 3 });
  await a.init();
  await b.init();
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  return {
    queues: [a, b],
    raw: async (ns, k) =>
      (await admin.query<{ value: string }>(`SELECT value FROM "${schema}".source_state WHERE namespace = $1 AND key = $2`, [ns, k])).rows[0]?.value,
    writeRaw: async (ns, k, v) =>
      void (await admin.query(
        `INSERT INTO "${schema}".source_state (namespace, key, value) VALUES ($1, $2, $3) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`,
        [ns, k, v],
      )),
    cleanup: async () => {
      await a.close();
      await b.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    },
  };
});

describe('credential key and files', () => {
  describe('parseCredentialKey', () => {
    it('takes 32 bytes as base64, url-safe base64 or 64 hex digits, and names the expected form otherwise', () => {
      const key = randomBytes(32);
      for (const text of [key.toString('base64'), key.toString('base64url'), key.toString('hex'), ` ${key.toString('base64')}\n`]) {
        expect(parseCredentialKey(text)).to.deep.equal({ key });
      }
      for (const text of ['', 'short', randomBytes(16).toString('base64'), randomBytes(33).toString('hex'), 'not base64 at all!']) {
        expect(parseCredentialKey(text)).to.have.property('problem').that.includes('must be 32 random bytes written as base64 or as 64 hex digits');
      }
    });
  });

  describe('embedded SQLite', () => {
    let dir: string;
    let queue: SqliteApprovalQueue | undefined;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'ah-cred-files-'));
    });
    afterEach(async () => {
      await queue?.close();
      queue = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    it('creates the queue file, its -wal and -shm, the lock file and a generated key file readable by their owner only (0600)', async () => {
      const file = join(dir, 'approvals.db');
      queue = new SqliteApprovalQueue(file);
      await queue.init();
      const store = new EncryptedCredentialStore(queue, { logger: silent });
      await store.set('source:acme', 'oauth', 'refresh-token');
      for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}.key`, `${file}.credentials-lock`]) {
        expect(existsSync(f), `${f} exists`).to.equal(true);
        expect(mode(f), f).to.equal('0600');
      }
      expect(parseCredentialKey(readFileSync(`${file}.key`, 'utf8'))).to.have.property('key');
      await queue.close();
      // A restart (a new process) finds the same key: the value still reads.
      queue = new SqliteApprovalQueue(file);
      await queue.init();
      expect(await new EncryptedCredentialStore(queue, { logger: silent }).get('source:acme', 'oauth')).to.equal('refresh-token');
    });

    it('takes group and other access away from a queue file an older version created world-readable', async () => {
      const file = join(dir, 'approvals.db');
      queue = new SqliteApprovalQueue(file);
      await queue.init();
      await queue.close();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o644);
      queue = new SqliteApprovalQueue(file);
      await queue.init();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) expect(mode(f), f).to.equal('0600');
    });

    it('refuses a key file that holds no key, naming the file', async () => {
      const file = join(dir, 'approvals.db');
      writeFileSync(`${file}.key`, 'garbage\n', { mode: 0o600 });
      queue = new SqliteApprovalQueue(file);
      await queue.init();
      const error = await new EncryptedCredentialStore(queue, { logger: silent }).set('source:acme', 'oauth', 'x').then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(CredentialError);
      expect(error!.message).to.include(`the credential key file ${file}.key must be 32 random bytes`);
    });
  });

  describe('PostgreSQL without credentials.key', () => {
    it('refuses to store a credential, naming the setting, and stores nothing', async () => {
      const schema = `${RUN}_${++schemas}`;
      const queue = new PostgresApprovalQueue({ connectionString: DATABASE_URL, schema, poolSize: 2 });
      await queue.init();
      try {
        const store = new EncryptedCredentialStore(queue, { logger: silent });
        const error = await store.set('source:acme', 'oauth', 'refresh-token').then(
          () => undefined,
          (e: Error) => e,
        );
        expect(error).to.be.instanceOf(CredentialError);
        expect(error!.message).to.include('credentials.key is not set').and.include('APPROVALS_HUB_CREDENTIALS_KEY');
        expect(await queue.getState('source:acme', 'oauth')).to.equal(undefined);
      } finally {
        await queue.close();
        const admin = new pg.Client({ connectionString: DATABASE_URL });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end();
      }
    });
  });
});
