/** Space, tab, line feed, vertical tab, form feed, carriage return: the only white space trimmed. */
const EDGE_SPACE = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;
const ASCII_UPPER = /[A-Z]/g;

/**
 * The key two e-mail addresses are compared by everywhere in approvals-hub (queues, lookups,
 * channels): ASCII white space around it trimmed and ASCII `A`–`Z` lower-cased; every other
 * character kept exactly as it is. A blank address has no key.
 *
 * Deliberately not `toLowerCase()`, `toLocaleLowerCase()` or NFKC: they map look-alikes onto real
 * letters (the Kelvin sign U+212A lower-cases to `k`, NFKC turns fullwidth `ｋ` into `k`), so an
 * address someone can register, `\u212Aate@example.com`, would be the same person as
 * `kate@example.com` and see her approvals. With this key, two addresses are the same person only
 * when they differ in ASCII letter case at most; nothing else is folded. That also matches mail
 * systems: the domain is case-insensitive in ASCII (DNS), and a local part with non-ASCII letters
 * (RFC 6531) has no agreed case rule, so it is compared as written.
 *
 * Stored e-mails (the queue adapters' approver e-mail columns) hold this key, written in
 * TypeScript, so SQL compares with `=` and never lower-cases.
 */
export function emailKey(email: string | null | undefined): string | undefined {
  if (typeof email !== 'string') return undefined;
  return email.replace(EDGE_SPACE, '').replace(ASCII_UPPER, (c) => String.fromCharCode(c.charCodeAt(0) + 32)) || undefined;
}
