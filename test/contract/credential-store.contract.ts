import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import pino from 'pino';
import type { ApprovalQueue } from '../../core/contracts/approval-queue.js';
import { CredentialError } from '../../core/contracts/credential-store.js';
import { EncryptedCredentialStore } from '../../core/host/credentials.js';

export interface CredentialStoreUnderTest {
  /** Two initialised queues on one store (the same file or schema; memory: the same queue twice). */
  readonly queues: readonly [ApprovalQueue, ApprovalQueue];
  /** What the store holds for the entry, read from the table itself, not through the adapter. */
  raw(namespace: string, key: string): Promise<string | undefined>;
  /** Writes the entry's value in the table itself, as an older version or an attacker would. */
  writeRaw(namespace: string, key: string, value: string): Promise<void>;
  cleanup(): Promise<void>;
}

const NS = 'source:acme';
const silent = pino({ level: 'silent' });
const newKey = () => randomBytes(32);

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection, got a value');
}

/**
 * The behaviour of the core's credential store on each queue adapter (memory, SQLite, PostgreSQL):
 * values encrypted and authenticated at rest, plain text from older versions migrated, and a
 * rotation lock that two adapter instances on one store honour.
 */
export function describeCredentialStoreContract(name: string, make: () => Promise<CredentialStoreUnderTest>): void {
  describe(`CredentialStore contract: ${name}`, () => {
    let subject: CredentialStoreUnderTest;
    let key: Buffer;
    const store = (queue: ApprovalQueue, k: Buffer | undefined = key) => new EncryptedCredentialStore(queue, { key: k, logger: silent });

    beforeEach(async () => {
      subject = await make();
      key = newKey();
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    it('gives back what was stored, per namespace and key, and nothing for an entry never written', async () => {
      const s = store(subject.queues[0]);
      await s.set(NS, 'oauth', 'refresh-token-1');
      await s.set(NS, 'other', 'value-2');
      await s.set('source:globex', 'oauth', 'refresh-token-3');
      expect(await s.get(NS, 'oauth')).to.equal('refresh-token-1');
      expect(await s.get(NS, 'other')).to.equal('value-2');
      expect(await s.get('source:globex', 'oauth')).to.equal('refresh-token-3');
      expect(await s.get(NS, 'never')).to.equal(undefined);
      expect(await store(subject.queues[1]).get(NS, 'oauth'), 'through the second adapter instance').to.equal('refresh-token-1');
    });

    it('stores no value in plain text, and the same value twice as two different ciphertexts (random IV)', async () => {
      const secret = `refresh-${randomBytes(8).toString('hex')}`;
      const s = store(subject.queues[0]);
      await s.set(NS, 'oauth', secret);
      const first = await subject.raw(NS, 'oauth');
      await s.set(NS, 'oauth', secret);
      const second = await subject.raw(NS, 'oauth');
      expect(first).to.be.a('string').and.not.include(secret);
      expect(Buffer.from(first!.replace(/^ah-enc:v1:/, ''), 'base64').toString('latin1')).not.to.include(secret);
      expect(second).to.not.equal(first);
    });

    it('detects tampering: an altered byte, and a value moved to another entry', async () => {
      const s = store(subject.queues[0]);
      await s.set(NS, 'oauth', 'refresh-token');
      const raw = (await subject.raw(NS, 'oauth'))!;
      const bytes = Buffer.from(raw.replace(/^ah-enc:v1:/, ''), 'base64');
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0x01, bytes.length - 1);
      await subject.writeRaw(NS, 'oauth', `ah-enc:v1:${bytes.toString('base64')}`);
      const altered = await rejection(s.get(NS, 'oauth'));
      expect(altered).to.be.instanceOf(CredentialError);
      expect(altered.message).to.include('cannot decrypt credential "oauth" of source:acme').and.include('altered');

      await s.set(NS, 'oauth', 'refresh-token');
      await subject.writeRaw('source:globex', 'oauth', (await subject.raw(NS, 'oauth'))!);
      expect(await rejection(s.get('source:globex', 'oauth'))).to.be.instanceOf(CredentialError);
    });

    it('refuses a value stored under another key with an error naming credentials.key, and never runs the rotation', async () => {
      await store(subject.queues[0]).set(NS, 'oauth', 'refresh-token');
      const other = store(subject.queues[1], newKey());
      const read = await rejection(other.get(NS, 'oauth'));
      expect(read).to.be.instanceOf(CredentialError);
      expect(read.message).to.include('credentials.key').and.not.include('refresh-token');
      let ran = false;
      await rejection(other.rotate(NS, 'oauth', async () => ((ran = true), { value: 'burnt', result: undefined })));
      expect(ran, 'the rotation callback ran with an unreadable value').to.equal(false);
      expect(await store(subject.queues[0]).get(NS, 'oauth'), 'the stored value is untouched').to.equal('refresh-token');
    });

    it('reads a value an older version wrote in plain text once, and re-writes it encrypted', async () => {
      const legacy = JSON.stringify({ refreshToken: 'plain-refresh', geolocation: 'https://us2.api.concursolutions.com' });
      await subject.writeRaw(NS, 'oauth', legacy);
      const s = store(subject.queues[0]);
      expect(await s.get(NS, 'oauth')).to.equal(legacy);
      const raw = await subject.raw(NS, 'oauth');
      expect(raw)
        .to.match(/^ah-enc:v1:/)
        .and.not.include('plain-refresh');
      expect(await s.get(NS, 'oauth')).to.equal(legacy);
    });

    it('rotates with the value read inside the lock, stores what the callback returns, and nothing when it throws', async () => {
      const s = store(subject.queues[0]);
      await s.set(NS, 'oauth', 'v1');
      const result = await s.rotate(NS, 'oauth', async (current) => ({ value: `${current}+v2`, result: current }));
      expect(result).to.equal('v1');
      expect(await s.get(NS, 'oauth')).to.equal('v1+v2');
      const failed = await rejection(s.rotate(NS, 'oauth', async () => Promise.reject(new Error('Concur said 108'))));
      expect(failed.message).to.equal('Concur said 108');
      expect(await s.get(NS, 'oauth')).to.equal('v1+v2');
      expect(await s.rotate(NS, 'oauth', async () => ({ result: 'kept' }))).to.equal('kept');
      expect(await s.get(NS, 'oauth')).to.equal('v1+v2');
    });

    it('serializes concurrent rotations through two adapter instances on one store (no update is lost)', async () => {
      const stores = [store(subject.queues[0]), store(subject.queues[1])];
      await stores[0]!.set(NS, 'counter', '0');
      let inside = 0;
      let overlapped = 0;
      const rotations = Array.from({ length: 12 }, (_, i) =>
        stores[i % 2]!.rotate(NS, 'counter', async (current) => {
          inside++;
          if (inside > 1) overlapped++;
          // A refresh on the wire: another rotation that did not wait would read the same value.
          await sleep(5);
          inside--;
          return { value: String(Number(current) + 1), result: undefined };
        }),
      );
      await Promise.all(rotations);
      expect(overlapped, 'rotations that ran while another held the lock').to.equal(0);
      expect(await stores[1]!.get(NS, 'counter')).to.equal('12');
    });
  });
}
