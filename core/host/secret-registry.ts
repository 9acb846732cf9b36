/**
 * Every secret the process holds (resolved references, rotated tokens). Log lines and CLI output
 * are scrubbed of these values before they are written, whatever field or message carries them.
 *
 * The set lives on `globalThis` under a registry symbol, not in this module: a plugin that bundles
 * its own copy of approvals-hub calls its copy's {@link registerSecret}, and the host's scrubber
 * must still see the value.
 */
const REGISTRY = Symbol.for('approvals-hub.secrets');
const secrets: Set<string> = ((globalThis as { [REGISTRY]?: Set<string> })[REGISTRY] ??= new Set<string>());

/**
 * Registers a secret value so no log line, CLI output or HTTP error message ever shows it: each
 * occurrence is replaced by `[REDACTED]`. Call it for every credential a plugin obtains at run
 * time (an access token it fetched, a rotated refresh token); values resolved from the deployment
 * file's secret references (`{"env": …}`, `{"file": …}`) are registered by the host already.
 * Values shorter than 6 characters are ignored (scrubbing them would mangle ordinary text).
 *
 * @param value - The secret; `undefined` and short values are ignored.
 */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

/** `line` with every registered secret replaced by `[REDACTED]`. */
export function scrubSecrets(line: string): string {
  let out = line;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
  return out;
}
