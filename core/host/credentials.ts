import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import type { SourceStateStore } from '../contracts/approval-queue.js';
import { CredentialError, type CredentialStore, type CredentialUpdate } from '../contracts/credential-store.js';
import type { Logger } from '../contracts/logger.js';

/** The deployment setting that holds the key, as error messages name it. */
export const CREDENTIALS_KEY_SETTING = 'credentials.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Marks an encrypted value; anything else in a credential entry was written in plain text by an older version. */
const PREFIX = 'ah-enc:v1:';
const HOW_TO_MAKE_A_KEY = 'e.g. the output of `openssl rand -base64 32`';

/**
 * Reads a credential key: 32 bytes as 64 hex digits or as base64 (standard or url-safe).
 * @returns the key, or a problem (naming neither the value nor any part of it).
 */
export function parseCredentialKey(text: string): { key: Buffer } | { problem: string } {
  const value = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) key = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== KEY_BYTES) {
    return { problem: `must be ${KEY_BYTES} random bytes written as base64 or as 64 hex digits (${HOW_TO_MAKE_A_KEY})` };
  }
  return { key };
}

/**
 * The key in `file`, or a new random one written there (mode 0600) when the file does not exist.
 * Two processes creating it at once end up with the same key: the file appears whole (a hard link
 * of a finished temporary file) or not at all.
 */
export function loadOrCreateKeyFile(file: string, logger: Logger): Buffer {
  const read = (): Buffer | undefined => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CredentialError(`cannot read the credential key file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const parsed = parseCredentialKey(text);
    if ('problem' in parsed) throw new CredentialError(`the credential key file ${file} ${parsed.problem}`);
    return parsed.key;
  };
  const existing = read();
  if (existing) return existing;
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, `${randomBytes(KEY_BYTES).toString('base64')}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, file);
    logger.info(
      { file },
      `generated a credential key for secrets at rest; keep this file with the queue file and back it up with it, or set ${CREDENTIALS_KEY_SETTING} in the deployment file`,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
  return read()!;
}

export interface CredentialStoreOptions {
  /** The deployment's `credentials.key`, already validated. */
  readonly key?: Buffer | undefined;
  readonly logger: Logger;
}

/**
 * The core's {@link CredentialStore}: AES-256-GCM (node:crypto) with a random 96-bit IV per value
 * and the entry's namespace and key as additional authenticated data, stored in the queue's state
 * entries and locked with the queue's {@link SourceStateStore.withStateLock}.
 *
 * The key is the deployment's `credentials.key`; without one, the queue says where a key may live
 * (a generated key file beside an embedded SQLite file, a random per-process key for the memory
 * queue) or that it is shared, and then nothing is stored. The key is looked up on first use, so a
 * deployment that stores no credential never needs one.
 */
export class EncryptedCredentialStore implements CredentialStore {
  private key: Buffer | undefined;

  constructor(
    private readonly queue: SourceStateStore,
    private readonly options: CredentialStoreOptions,
  ) {
    this.key = options.key;
  }

  async get(namespace: string, key: string): Promise<string | undefined> {
    const raw = await this.queue.getState(namespace, key);
    if (raw === undefined) return undefined;
    if (raw.startsWith(PREFIX)) return this.decrypt(namespace, key, raw);
    // Plain text from an older version: used, and re-written encrypted (rotate does that).
    return this.rotate(namespace, key, async (current) => ({ result: current }));
  }

  async set(namespace: string, key: string, value: string): Promise<void> {
    // Replaces whatever is stored, even a value that no longer decrypts.
    await this.lock(namespace, key)(namespace, key, async () => ({ value: this.encrypt(namespace, key, value), result: undefined }));
  }

  private lock(namespace: string, key: string): NonNullable<SourceStateStore['withStateLock']> {
    const lock = this.queue.withStateLock?.bind(this.queue);
    if (!lock) throw new CredentialError(`the queue adapter offers no credential storage (withStateLock): credential "${key}" of ${namespace} cannot be kept`);
    return lock;
  }

  async rotate<T>(namespace: string, key: string, work: (current: string | undefined) => Promise<CredentialUpdate<T>>): Promise<T> {
    return this.lock(namespace, key)(namespace, key, async (raw) => {
      const plain = raw !== undefined && !raw.startsWith(PREFIX);
      const current = raw === undefined ? undefined : plain ? raw : this.decrypt(namespace, key, raw);
      const update = await work(current);
      const value = update.value ?? (plain ? current : undefined);
      if (plain && update.value === undefined)
        this.options.logger.info({ namespace, key }, 'credential stored in plain text by an older version re-written encrypted');
      return { value: value === undefined ? undefined : this.encrypt(namespace, key, value), result: update.result };
    });
  }

  private encrypt(namespace: string, key: string, value: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.secretKey(), iv);
    cipher.setAAD(aad(namespace, key));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  private decrypt(namespace: string, key: string, raw: string): string {
    const packed = Buffer.from(raw.slice(PREFIX.length), 'base64');
    const refused = () =>
      new CredentialError(
        `cannot decrypt credential "${key}" of ${namespace}: it was stored under another credential key (${CREDENTIALS_KEY_SETTING}) or altered. ` +
          'Configure the key it was stored with; or, to start over, delete the entry and configure the credential again',
      );
    if (packed.length < IV_BYTES + TAG_BYTES) throw refused();
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.secretKey(), packed.subarray(0, IV_BYTES));
      decipher.setAAD(aad(namespace, key));
      decipher.setAuthTag(packed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(packed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (error) {
      if (error instanceof CredentialError) throw error;
      throw refused();
    }
  }

  private secretKey(): Buffer {
    if (this.key) return this.key;
    const home = this.queue.credentialKeyHome?.() ?? { kind: 'shared' as const };
    if (home.kind === 'file') this.key = loadOrCreateKeyFile(home.path, this.options.logger);
    else if (home.kind === 'process') this.key = randomBytes(KEY_BYTES);
    else {
      throw new CredentialError(
        `${CREDENTIALS_KEY_SETTING} is not set: this queue is shared by several hosts, which must share one key to keep credentials ` +
          `(rotating refresh tokens) encrypted. Set "credentials": {"key": {"env": "APPROVALS_HUB_CREDENTIALS_KEY"}} in the deployment file, ` +
          `the variable holding ${KEY_BYTES} random bytes as base64 (${HOW_TO_MAKE_A_KEY}), the same on every host`,
      );
    }
    return this.key;
  }
}

const aad = (namespace: string, key: string): Buffer => Buffer.from(`${namespace}\u0000${key}`, 'utf8');
