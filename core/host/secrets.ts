import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { registerSecret } from './logging.js';

/** How a deployment file names a secret: never the value itself. */
export type SecretRef = { readonly env: string } | { readonly file: string };

export function isSecretRef(value: unknown): value is SecretRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 1) return false;
  const v = value as Record<string, unknown>;
  return (keys[0] === 'env' && typeof v.env === 'string' && v.env.length > 0) || (keys[0] === 'file' && typeof v.file === 'string' && v.file.length > 0);
}

/**
 * Replaces every secret reference in `value` by the secret, registering each so logs never show
 * it. Problems are reported as `<path>: <message>` lines, one per unresolvable reference.
 */
export function resolveSecrets(value: unknown, path: string, env: NodeJS.ProcessEnv, baseDir: string, problems: string[]): unknown {
  if (isSecretRef(value)) {
    if ('env' in value) {
      const secret = env[value.env];
      if (secret === undefined || secret === '') {
        problems.push(`${path}: environment variable ${value.env} is not set`);
        return undefined;
      }
      registerSecret(secret);
      return secret;
    }
    try {
      const secret = readFileSync(resolve(baseDir, value.file), 'utf8').trim();
      if (secret === '') {
        problems.push(`${path}: secret file ${value.file} is empty`);
        return undefined;
      }
      registerSecret(secret);
      return secret;
    } catch (error) {
      problems.push(`${path}: cannot read secret file ${value.file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveSecrets(v, `${path}[${i}]`, env, baseDir, problems));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveSecrets(v, `${path}.${k}`, env, baseDir, problems)]));
  }
  return value;
}
