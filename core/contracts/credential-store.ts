import type { ServiceIdentifier } from '../di.js';

/** What a {@link CredentialStore.rotate} callback hands back: its result, and the value to store, if any. */
export interface CredentialUpdate<T> {
  /** Stored (encrypted) before the lock is released; undefined leaves the stored value as it is. */
  readonly value?: string | undefined;
  /** What `rotate` resolves to. */
  readonly result: T;
}

/**
 * Secrets a plugin must keep between runs (a source's rotating refresh token, later an approver's
 * own token), encrypted at rest and shared by every process on one queue store. Bound once in the
 * host's root container; a source instance keeps its credentials under namespace
 * `source:<instanceId>`.
 *
 * Values are encrypted with AES-256-GCM under the deployment's credential key, authenticated with
 * their namespace and key, so a value copied to another entry, altered, or read with another key
 * is refused with a {@link CredentialError} instead of being used.
 */
export interface CredentialStore {
  /**
   * The value stored under (`namespace`, `key`), decrypted; undefined when none is stored. A value
   * an older version wrote in plain text is returned and re-written encrypted.
   * @throws CredentialError when the value cannot be decrypted (another key, or tampered with), or
   *   when no credential key is available.
   */
  get(namespace: string, key: string): Promise<string | undefined>;

  /**
   * Stores `value` encrypted under (`namespace`, `key`), replacing what was there, under the same
   * lock as {@link rotate}.
   * @throws CredentialError when no credential key is available (a shared queue with no
   *   `credentials.key` configured).
   */
  set(namespace: string, key: string, value: string): Promise<void>;

  /**
   * Runs `work` holding a lock on (`namespace`, `key`) that every process using this store honours
   * (several hosts, CLI commands), with the value read inside the lock; the value `work` returns is
   * stored before the lock is released. This is how a rotating secret is used: re-read, refresh
   * only if still needed, store the successor, all while no other process can do the same.
   * Callers in one process are served one at a time too. When `work` throws, nothing is stored and
   * the error is rethrown.
   * @throws CredentialError when the stored value cannot be decrypted, when no credential key is
   *   available for a value to store, or when the lock could not be taken in time.
   */
  rotate<T>(namespace: string, key: string, work: (current: string | undefined) => Promise<CredentialUpdate<T>>): Promise<T>;
}
export const CredentialStore: ServiceIdentifier<CredentialStore> = Symbol.for('approvals.core.CredentialStore');

/** A credential that cannot be read or stored: wrong or missing key, tampered value, lock not taken. The message names the setting or entry, never a secret. */
export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}
