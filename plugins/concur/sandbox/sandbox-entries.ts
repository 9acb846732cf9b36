import { concurDateTime, concurMidnight, fromCents, sqlDatetimeMs } from './sandbox-format.js';
import { CONCUR_ID_ALPHABET, SeededRandom, deriveSeed } from './sandbox-random.js';

/** One expense entry, kept in integer cents. Seeded entries are regenerated from a seed on demand. */
export interface EntryData {
  readonly id: string;
  readonly expenseTypeCode: string;
  readonly expenseTypeName: string;
  readonly spendCategoryCode: string;
  readonly spendCategoryName: string;
  readonly paymentTypeId: string;
  readonly paymentTypeName: string;
  readonly isCompanyCard: boolean;
  readonly transactionDateMs: number;
  readonly transactionCurrencyCode: string;
  readonly transactionAmountCents: number;
  readonly exchangeRate: number;
  /** In the report currency. */
  readonly postedAmountCents: number;
  readonly approvedAmountCents: number;
  readonly vendorDescription: string;
  readonly locationName: string;
  readonly isPersonal: boolean;
  readonly hasImage: boolean;
  readonly isImageRequired: boolean;
  readonly receiptReceived: boolean;
  readonly hasExceptions: boolean;
  readonly hasAttendees: boolean;
  readonly lastModifiedMs: number;
}

/** What a caller of `submit` may say about an entry; everything else is filled in. */
export interface EntrySpec {
  readonly expenseTypeCode?: string;
  readonly expenseTypeName?: string;
  /** In the report currency. */
  readonly amount: number;
  readonly vendorDescription?: string;
  readonly hasImage?: boolean;
  readonly isImageRequired?: boolean;
  readonly hasExceptions?: boolean;
  readonly isCompanyCard?: boolean;
}

interface ExpenseType {
  readonly code: string;
  readonly name: string;
  readonly category: string;
  readonly categoryName: string;
  readonly min: number;
  readonly max: number;
  readonly vendors: readonly string[];
}

const EXPENSE_TYPES: readonly ExpenseType[] = [
  {
    code: 'AIRFR',
    name: 'Airfare',
    category: 'AIRFR',
    categoryName: 'Air',
    min: 150,
    max: 1200,
    vendors: ['Lufthansa', 'United Airlines', 'Air Canada', 'British Airways'],
  },
  { code: 'LODNG', name: 'Hotel', category: 'LODNG', categoryName: 'Lodging', min: 90, max: 650, vendors: ['Marriott', 'Hilton', 'Hyatt', 'Motel One'] },
  { code: 'CARRT', name: 'Car Rental', category: 'CARRT', categoryName: 'Car Rental', min: 40, max: 320, vendors: ['Hertz', 'Avis', 'Sixt'] },
  {
    code: 'BUSML',
    name: 'Business Meal (attendees)',
    category: 'MEALS',
    categoryName: 'Meals',
    min: 12,
    max: 260,
    vendors: ['Blue Bottle', 'The Grill House', 'Sushi Ko', 'Trattoria Roma'],
  },
  { code: 'TAXIX', name: 'Taxi', category: 'GRTRN', categoryName: 'Ground Transportation', min: 8, max: 95, vendors: ['Uber', 'Lyft', 'Yellow Cab'] },
  { code: 'GASXX', name: 'Fuel', category: 'GASXX', categoryName: 'Gas', min: 20, max: 95, vendors: ['Chevron', 'Shell', 'BP'] },
  { code: 'PARKG', name: 'Parking', category: 'GRTRN', categoryName: 'Ground Transportation', min: 5, max: 60, vendors: ['SP+ Parking', 'ParkWhiz'] },
  { code: 'OFCSP', name: 'Office Supplies', category: 'OFCSP', categoryName: 'Office Supplies', min: 5, max: 180, vendors: ['Staples', 'Office Depot'] },
];

const FOREIGN: readonly { readonly code: string; readonly toUsd: number }[] = [
  { code: 'EUR', toUsd: 1.08 },
  { code: 'GBP', toUsd: 1.27 },
  { code: 'JPY', toUsd: 0.0067 },
  { code: 'MXN', toUsd: 0.058 },
];
const USD_PER: Readonly<Record<string, number>> = { USD: 1, CAD: 0.74, EUR: 1.08, GBP: 1.27, JPY: 0.0067, MXN: 0.058 };

const PAYMENT_TYPES = {
  cash: { id: 'gWurF7TC$pQAT4cqT0JokiYMobzQdz', name: 'Cash' },
  card: { id: 'gWurF7TC$pQAT4cqT0JokiYMobzQcc', name: 'Company Card' },
};

/** Receipts are required above this amount (USD equivalent), a common Concur policy threshold. */
const RECEIPT_THRESHOLD_USD = 75;

const entryId = (rng: SeededRandom): string => `gW${rng.chars(34, CONCUR_ID_ALPHABET)}`;

/**
 * Generates `count` entries for one report. Pure in (seed, count, currency, createdMs), so the
 * company stores only those four numbers per report and regenerates entries when asked. IDs come
 * from their own stream so seeding, which needs only the amounts and flags, can skip them.
 */
export function generateEntries(seed: number, count: number, reportCurrency: string, createdMs: number, withIds = true): EntryData[] {
  const rng = new SeededRandom(seed);
  const idRng = new SeededRandom(deriveSeed(seed, 0x1d));
  const entries: EntryData[] = [];
  const reportUsd = USD_PER[reportCurrency] ?? 1;
  for (let i = 0; i < count; i++) {
    const type = rng.pick(EXPENSE_TYPES);
    const foreign = rng.chance(0.1) ? rng.pick(FOREIGN.filter((f) => f.code !== reportCurrency)) : undefined;
    const postedUsd = type.min + rng.next() * (type.max - type.min);
    const postedAmountCents = Math.round((postedUsd / reportUsd) * 100);
    const exchangeRate = foreign ? Math.round((foreign.toUsd / reportUsd) * 1e6) / 1e6 : 1;
    const transactionAmountCents = foreign ? Math.round(postedAmountCents / exchangeRate) : postedAmountCents;
    const isImageRequired = postedUsd > RECEIPT_THRESHOLD_USD;
    const hasImage = isImageRequired ? rng.chance(0.8) : rng.chance(0.4);
    const isCompanyCard = rng.chance(0.35);
    const transactionDateMs = createdMs - rng.int(0, 20) * 86_400_000;
    entries.push({
      id: withIds ? entryId(idRng) : '',
      expenseTypeCode: type.code,
      expenseTypeName: type.name,
      spendCategoryCode: type.category,
      spendCategoryName: type.categoryName,
      paymentTypeId: isCompanyCard ? PAYMENT_TYPES.card.id : PAYMENT_TYPES.cash.id,
      paymentTypeName: isCompanyCard ? PAYMENT_TYPES.card.name : PAYMENT_TYPES.cash.name,
      isCompanyCard,
      transactionDateMs,
      transactionCurrencyCode: foreign ? foreign.code : reportCurrency,
      transactionAmountCents,
      exchangeRate,
      postedAmountCents,
      approvedAmountCents: postedAmountCents,
      vendorDescription: rng.pick(type.vendors),
      locationName: '',
      isPersonal: false,
      hasImage,
      isImageRequired,
      receiptReceived: hasImage && rng.chance(0.3),
      hasExceptions: (isImageRequired && !hasImage) || rng.chance(0.04),
      hasAttendees: type.code === 'BUSML',
      lastModifiedMs: sqlDatetimeMs(createdMs + rng.int(0, 3_600_000)),
    });
  }
  return entries;
}

/** Turns `submit({entries: [...]})` specs into entries (stored on the report, not regenerated). */
export function entriesFromSpecs(seed: number, specs: readonly EntrySpec[], reportCurrency: string, createdMs: number): EntryData[] {
  const rng = new SeededRandom(seed);
  const reportUsd = USD_PER[reportCurrency] ?? 1;
  return specs.map((spec) => {
    const type = EXPENSE_TYPES.find((t) => t.code === spec.expenseTypeCode) ?? rng.pick(EXPENSE_TYPES);
    const cents = Math.round(spec.amount * 100);
    const isImageRequired = spec.isImageRequired ?? spec.amount * reportUsd > RECEIPT_THRESHOLD_USD;
    const hasImage = spec.hasImage ?? true;
    const isCompanyCard = spec.isCompanyCard ?? false;
    return {
      id: entryId(rng),
      expenseTypeCode: spec.expenseTypeCode ?? type.code,
      expenseTypeName: spec.expenseTypeName ?? type.name,
      spendCategoryCode: type.category,
      spendCategoryName: type.categoryName,
      paymentTypeId: isCompanyCard ? PAYMENT_TYPES.card.id : PAYMENT_TYPES.cash.id,
      paymentTypeName: isCompanyCard ? PAYMENT_TYPES.card.name : PAYMENT_TYPES.cash.name,
      isCompanyCard,
      transactionDateMs: createdMs,
      transactionCurrencyCode: reportCurrency,
      transactionAmountCents: cents,
      exchangeRate: 1,
      postedAmountCents: cents,
      approvedAmountCents: cents,
      vendorDescription: spec.vendorDescription ?? rng.pick(type.vendors),
      locationName: '',
      isPersonal: false,
      hasImage,
      isImageRequired,
      receiptReceived: false,
      hasExceptions: spec.hasExceptions ?? (isImageRequired && !hasImage),
      hasAttendees: type.code === 'BUSML',
      lastModifiedMs: sqlDatetimeMs(createdMs),
    };
  });
}

/** Report-level facts derived from its entries. */
export interface EntrySummary {
  readonly totalCents: number;
  readonly companyCardCents: number;
  readonly hasException: boolean;
  readonly receiptsReceived: boolean;
}

export function summarizeEntries(entries: readonly EntryData[]): EntrySummary {
  let totalCents = 0;
  let companyCardCents = 0;
  let hasException = false;
  let receiptsReceived = entries.length > 0;
  for (const e of entries) {
    totalCents += e.postedAmountCents;
    if (e.isCompanyCard) companyCardCents += e.postedAmountCents;
    hasException ||= e.hasExceptions;
    receiptsReceived &&= !e.isImageRequired || e.receiptReceived;
  }
  return { totalCents, companyCardCents, hasException, receiptsReceived };
}

const nulls = (prefix: string, count: number): Record<string, null> => {
  const out: Record<string, null> = {};
  for (let i = 1; i <= count; i++) out[`${prefix}${i}`] = null;
  return out;
};
const ORG_UNITS = nulls('OrgUnit', 6);
const CUSTOM_40 = nulls('Custom', 40);

/** v3 Entry with exactly the keys of v3-entry.historical.json, in its order. */
export function renderV3Entry(entry: EntryData, reportId: string, ownerLoginId: string, baseUrl: string): Record<string, unknown> {
  return {
    ReportID: reportId,
    ReportOwnerID: ownerLoginId,
    ExpenseTypeCode: entry.expenseTypeCode,
    ExpenseTypeName: entry.expenseTypeName,
    SpendCategoryCode: entry.spendCategoryCode,
    SpendCategoryName: entry.spendCategoryName,
    PaymentTypeID: entry.paymentTypeId,
    PaymentTypeName: entry.paymentTypeName,
    TransactionDate: concurMidnight(entry.transactionDateMs),
    TransactionCurrencyCode: entry.transactionCurrencyCode,
    TransactionAmount: fromCents(entry.transactionAmountCents),
    ExchangeRate: entry.exchangeRate,
    PostedAmount: fromCents(entry.postedAmountCents),
    ApprovedAmount: fromCents(entry.approvedAmountCents),
    VendorDescription: entry.vendorDescription,
    VendorListItemID: null,
    VendorListItemName: null,
    LocationID: null,
    LocationName: entry.locationName,
    LocationSubdivision: null,
    LocationCountry: null,
    Description: null,
    IsPersonal: entry.isPersonal,
    IsBillable: false,
    IsPersonalCardCharge: false,
    HasImage: entry.hasImage,
    IsImageRequired: entry.isImageRequired,
    ReceiptReceived: entry.receiptReceived,
    TaxReceiptType: 'N',
    ElectronicReceiptID: null,
    CompanyCardTransactionID: null,
    TripID: null,
    HasItemizations: false,
    AllocationType: 'N',
    HasAttendees: entry.hasAttendees,
    HasVAT: false,
    HasAppliedCashAdvance: false,
    HasComments: false,
    HasExceptions: entry.hasExceptions,
    IsPaidByExpensePay: false,
    EmployeeBankAccountID: null,
    Journey: null,
    LastModified: concurDateTime(entry.lastModifiedMs),
    FormID: 'gWvidmKNPVE38CEiyWu7DFvcS7OvCjV3Zvg',
    ...ORG_UNITS,
    ...CUSTOM_40,
    ID: entry.id,
    URI: `${baseUrl}/api/v3.0/expense/entries/${entry.id}`,
  };
}
