import { expect } from 'chai';
import fc from 'fast-check';
import { buildIdempotencyKey, IdempotencyKeyError, parseIdempotencyKey, type ApprovalMessageKey, type DigestMessageKey } from '../../core/index.js';

const channel = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const generation = fc.stringMatching(/^[0-9a-f]{8}$/);
/** Approval keys and approver ids as Concur gives them: colons, dots and `#` in the external id included. */
const approvalKey = fc
  .tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), fc.stringMatching(/^[a-z]{1,10}$/), fc.string({ minLength: 1, maxLength: 30 }))
  .map(([s, k, id]) => `${s}:${k}:${id}`);
/** Approver ids never hold a `#` (Concur ids and logins); colons are fine. */
const approverId = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes('#'));
const action = fc.oneof(
  fc.constantFrom('notify', 'update', 'close'),
  fc.integer({ min: 1, max: 99 }).map((n) => `remind-${n}`),
) as fc.Arbitrary<ApprovalMessageKey['action']>;

describe('idempotency key', () => {
  it('reads back every part of an approval message key it built', () => {
    fc.assert(
      fc.property(approvalKey, generation, fc.integer({ min: 1, max: 10_000 }), approverId, channel, action, (key, gen, revision, approver, ch, act) => {
        const parts: ApprovalMessageKey = { kind: 'approval', approvalKey: key, generation: gen, revision, approverId: approver, channel: ch, action: act };
        expect(parseIdempotencyKey(buildIdempotencyKey(parts))).to.deep.equal(parts);
      }),
    );
  });

  it('reads back every part of a digest key it built', () => {
    fc.assert(
      fc.property(fc.emailAddress(), channel, fc.date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true }), (email, ch, day) => {
        const parts: DigestMessageKey = { kind: 'digest', email, channel: ch, date: day.toISOString().slice(0, 10) };
        expect(parseIdempotencyKey(buildIdempotencyKey(parts))).to.deep.equal(parts);
      }),
    );
  });

  it('keeps the wire format queues already hold', () => {
    expect(
      buildIdempotencyKey({
        kind: 'approval',
        approvalKey: 'concur:report:A:1',
        generation: '1a2b3c4d',
        revision: 2,
        approverId: 'grace',
        channel: 'slack',
        action: 'remind-1',
      }),
    ).to.equal('concur:report:A:1#1a2b3c4d.2:grace:slack:remind-1');
    expect(buildIdempotencyKey({ kind: 'digest', email: 'grace@acme.test', channel: 'console', date: '2025-06-03' })).to.equal(
      'digest:grace@acme.test:console:2025-06-03',
    );
  });

  for (const bad of [
    '',
    'concur:report:1',
    'concur:report:1#g.1:grace:slack',
    'concur:report:1#g.x:grace:slack:notify',
    'concur:report:1#g.1:grace:slack:remind',
    'digest:grace@acme.test',
  ]) {
    it(`rejects the malformed key ${JSON.stringify(bad)} with an error naming it and the expected shapes`, () => {
      expect(() => parseIdempotencyKey(bad))
        .to.throw(IdempotencyKeyError)
        .with.property('message')
        .that.includes(`malformed idempotency key ${JSON.stringify(bad)}`)
        .and.includes('<approval key>#<generation>.<revision>:<approver>:<channel>:<notify|update|close|remind-n>');
    });
  }

  it('refuses to build a key it could not read back', () => {
    const ok: ApprovalMessageKey = {
      kind: 'approval',
      approvalKey: 'concur:report:1',
      generation: 'g',
      revision: 1,
      approverId: 'grace',
      channel: 'slack',
      action: 'notify',
    };
    expect(() => buildIdempotencyKey({ ...ok, channel: 'a:b' })).to.throw(IdempotencyKeyError, /channel "a:b"/);
    expect(() => buildIdempotencyKey({ ...ok, generation: 'g.1' })).to.throw(IdempotencyKeyError, /generation "g.1"/);
    expect(() => buildIdempotencyKey({ ...ok, approvalKey: 'digest:x' })).to.throw(IdempotencyKeyError, /marks a digest/);
  });
});
