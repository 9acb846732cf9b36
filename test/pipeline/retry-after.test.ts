import { expect } from 'chai';
import { MAX_RETRY_AFTER_MS, retryAfterMs } from '../../core/index.js';

describe("retryAfterMs (a channel's Retry-After header)", () => {
  const now = new Date('1994-11-06T08:49:00.000Z');

  it('reads delay-seconds as milliseconds', () => {
    expect(retryAfterMs('0', { now })).to.equal(0);
    expect(retryAfterMs('120', { now })).to.equal(120_000);
    expect(retryAfterMs(' 7 ', { now })).to.equal(7_000);
  });

  it('reads each of the three HTTP-date forms as the time left until that date', () => {
    for (const date of ['Sun, 06 Nov 1994 08:49:37 GMT', 'Sunday, 06-Nov-94 08:49:37 GMT', 'Sun Nov  6 08:49:37 1994']) {
      expect(retryAfterMs(date, { now }), date).to.equal(37_000);
    }
  });

  it('waits nothing for a date already past', () => {
    expect(retryAfterMs('Sat, 05 Nov 1994 08:49:37 GMT', { now })).to.equal(0);
  });

  it("caps a long wait at an hour, or at the caller's own limit", () => {
    expect(retryAfterMs(String(7 * 24 * 3600), { now })).to.equal(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs('Fri, 01 Jan 2100 00:00:00 GMT', { now })).to.equal(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs('600', { now, maxMs: 60_000 })).to.equal(60_000);
    expect(retryAfterMs('86400', { now, maxMs: Infinity })).to.equal(86_400_000);
  });

  it('answers undefined for an absent header or one that is neither form, so the caller backs off on its own', () => {
    for (const header of [undefined, null, '', '  ', 'soon', '1.5', '-1', '1e3', '2026-03-02', 'Sun, 99 Foo 1994 08:49:37 GMT']) {
      expect(retryAfterMs(header, { now }), JSON.stringify(header)).to.equal(undefined);
    }
  });
});
