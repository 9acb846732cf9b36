import { expect } from 'chai';
import fc from 'fast-check';
import { emailKey } from '../../core/index.js';
import { normEmail } from '../../core/pipeline/queue-support.js';
import { workEmail } from '../../plugins/concur/mappers/identity-mapper.js';

/** Letters and their look-alikes that Unicode case mapping or NFKC fold onto ASCII, and a few plain ones. */
const UNITS = [
  'a',
  'A',
  'k',
  'K',
  's',
  'S',
  'i',
  'I',
  'e',
  'E',
  '\u212A', // KELVIN SIGN: toLowerCase → k
  '\u017F', // LATIN SMALL LETTER LONG S: toUpperCase → S, NFKC → s
  '\u0130', // LATIN CAPITAL LETTER I WITH DOT ABOVE: toLowerCase → i + U+0307
  '\u0131', // LATIN SMALL LETTER DOTLESS I: toUpperCase → I
  '\uFF4B',
  '\uFF2B', // FULLWIDTH k, K: NFKC → k, K
  '\u212B',
  'Å',
  'å', // ANGSTROM SIGN: toLowerCase → å
  'ß',
  'ẞ',
  'é',
  'É',
  '\u0307',
  '@',
  '.',
  '-',
  '_',
  ' ',
  '\t',
  '\u00A0',
  '\u3000',
];

/** A variant of `s`, one unit at a time: kept, case-flipped, case-mapped or NFKC-folded the Unicode way. */
const variant = (s: string) =>
  fc
    .array(
      fc.constantFrom<(c: string) => string>(
        (c) => c,
        (c) => c.toLowerCase(),
        (c) => c.toUpperCase(),
        (c) => c.normalize('NFKC'),
        (c) => c.toLowerCase().normalize('NFKC'),
      ),
      {
        minLength: s.length,
        maxLength: s.length,
      },
    )
    .map((fs) => [...s].map((c, i) => fs[i]!(c)).join(''));

const asciiSpace = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;
const isAsciiLetter = (c: string) => /^[A-Za-z]$/.test(c);

/** The definition, stated independently of the code: same length, and each unit equal or the same ASCII letter in another case. */
function differOnlyInAsciiCase(a: string, b: string): boolean {
  const x = a.replace(asciiSpace, '');
  const y = b.replace(asciiSpace, '');
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const c = x[i]!;
    const d = y[i]!;
    if (c !== d && !(isAsciiLetter(c) && isAsciiLetter(d) && c.toLowerCase() === d.toLowerCase())) return false;
  }
  return true;
}

for (const [name, key] of [
  ['emailKey', emailKey],
  ["normEmail (the queue adapters' key)", normEmail],
] as const) {
  describe(`${name}: e-mail comparison key (fast-check)`, () => {
    const address = fc.string({ unit: fc.constantFrom(...UNITS), minLength: 1, maxLength: 12 });

    it('makes two addresses equal only when they differ in ASCII letter case (and surrounding ASCII space) alone', () => {
      fc.assert(
        fc.property(
          address.chain((a) => fc.tuple(fc.constant(a), fc.oneof(variant(a), address))),
          ([a, b]) => {
            const ka = key(a);
            if (ka === undefined || ka !== key(b)) return;
            expect(differOnlyInAsciiCase(a, b), `${JSON.stringify(a)} and ${JSON.stringify(b)} share the key ${JSON.stringify(ka)}`).to.equal(true);
          },
        ),
        { numRuns: 2000 },
      );
    });

    it('still matches every ASCII case variant of an address', () => {
      const ascii = fc.string({ unit: fc.constantFrom('a', 'B', 'k', 'Z', '0', '.', '@', '-'), minLength: 1, maxLength: 20 });
      fc.assert(
        fc.property(ascii, fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }), (a, flips) => {
          const b = [...a].map((c, i) => (flips[i] ? c.toUpperCase() : c.toLowerCase())).join('');
          expect(key(` ${b}\t`)).to.equal(key(a));
        }),
      );
    });

    it('keeps the Kelvin sign, a fullwidth k and a long s apart from the letters they look like', () => {
      expect(key('\u212Aate@example.com')).to.equal('\u212Aate@example.com').and.not.equal(key('kate@example.com'));
      expect(key('\uFF4Bate@example.com')).not.to.equal(key('kate@example.com'));
      expect(key('ro\u017Fe@example.com')).not.to.equal(key('rose@example.com'));
      expect(key(' Kate@Example.COM\n')).to.equal('kate@example.com');
      expect(key('   ')).to.equal(undefined);
    });
  });
}

describe('Concur identity mapper: work e-mail', () => {
  it("keys a Concur user's e-mail like the core does, so a Kelvin-sign address does not become kate@", () => {
    const user = (value: string) => ({ userName: 'x', emails: [{ value, type: 'work' }] }) as Parameters<typeof workEmail>[0];
    expect(workEmail(user('\u212Aate@Example.com'))).to.equal('\u212Aate@example.com');
    expect(workEmail(user(' Kate@Example.COM '))).to.equal('kate@example.com');
  });
});
