import { moneyFromNumber, type Money } from '../../../core/index.js';

/**
 * Minor-unit digits of an ISO 4217 currency as ICU knows them (USD 2, JPY 0, BHD 3); 2 for a code ICU rejects,
 * which is core's default.
 */
export function currencyFractionDigits(currency: string): number {
  let digits = FRACTION_DIGITS.get(currency);
  if (digits === undefined) {
    try {
      digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      digits = 2;
    }
    FRACTION_DIGITS.set(currency, digits); // building an Intl.NumberFormat costs ~35 µs: once per currency
  }
  return digits;
}

const FRACTION_DIGITS = new Map<string, number>();

/** Core's {@link moneyFromNumber} with the currency's own number of decimals (`1900, CAD` → `1900.00`). */
export function concurMoney(value: number, currency: string): Money {
  return moneyFromNumber(value, currency, currencyFractionDigits(currency));
}

/**
 * Sums amounts in minor units, so `0.1 + 0.2` is `0.30`, not `0.30000000000000004` rounded by luck.
 * Each amount is rounded to the currency's decimals first, as Concur shows it.
 */
export function sumMoney(values: readonly number[], currency: string): Money {
  const digits = currencyFractionDigits(currency);
  const scale = 10 ** digits;
  const minor = values.reduce((sum, v) => sum + Math.round(v * scale), 0);
  return moneyFromNumber(minor / scale, currency, digits);
}
