import type { Money } from '../../../core/index.js';
import type { components } from '../generated/expense-v3.js';
import { JsonObject } from './json-reader.js';
import { concurMoney, sumMoney } from './money.js';

/** Expense Entries v3 `EntryGet`, as generated from openapi/concur/expense-v3.yaml. */
export type Entry = components['schemas']['EntryGet'];
export type EntryCollection = components['schemas']['EntryCollection'];

export const FLAG_EXCEPTIONS = 'exceptions';
export const FLAG_MISSING_RECEIPT = 'missing receipt';

/** How many lines a card shows; the rest are counted in `count` and `total`. */
export const TOP_LINES = 5;

/** One line of the card; assignable to core's `Card['lineItems'][number]`. */
export interface LineItem {
  readonly label: string;
  readonly amount: Money;
  readonly flags: readonly string[];
}

/** What a card shows of a report's entries. JSON-serialisable; its `lines` are `Approval.content.lineItems`. */
export interface LineItemSummary {
  /** Number of entries. */
  readonly count: number;
  /** Sum of the entries' posted amounts, in the report currency. */
  readonly total: Money;
  /** The {@link TOP_LINES} largest entries, largest first. */
  readonly lines: readonly LineItem[];
  /** Expense types and how many entries each has, most frequent first. */
  readonly expenseTypes: readonly { readonly name: string; readonly count: number }[];
  /** Report-level warnings: {@link FLAG_EXCEPTIONS}, {@link FLAG_MISSING_RECEIPT}. */
  readonly flags: readonly string[];
}

function readEntry(o: JsonObject): Entry {
  return {
    ID: o.string('ID'),
    ExpenseID: o.optionalString('ExpenseID'),
    URI: o.optionalString('URI'),
    ReportID: o.string('ReportID'),
    ReportOwnerID: o.optionalString('ReportOwnerID'),
    ExpenseTypeCode: o.string('ExpenseTypeCode'),
    ExpenseTypeName: o.string('ExpenseTypeName'),
    SpendCategoryCode: o.nullableString('SpendCategoryCode'),
    SpendCategoryName: o.nullableString('SpendCategoryName'),
    PaymentTypeID: o.nullableString('PaymentTypeID'),
    PaymentTypeName: o.nullableString('PaymentTypeName'),
    TransactionDate: o.optionalString('TransactionDate'),
    TransactionAmount: o.optionalNumber('TransactionAmount'),
    TransactionCurrencyCode: o.optionalString('TransactionCurrencyCode'),
    ExchangeRate: o.optionalNumber('ExchangeRate'),
    PostedAmount: o.number('PostedAmount'),
    ApprovedAmount: o.optionalNumber('ApprovedAmount'),
    VendorDescription: o.nullableString('VendorDescription'),
    VendorListItemID: o.nullableString('VendorListItemID'),
    VendorListItemName: o.nullableString('VendorListItemName'),
    LocationID: o.nullableString('LocationID'),
    LocationName: o.nullableString('LocationName'),
    LocationSubdivision: o.nullableString('LocationSubdivision'),
    LocationCountry: o.nullableString('LocationCountry'),
    Description: o.nullableString('Description'),
    IsPersonal: o.optionalBoolean('IsPersonal'),
    IsBillable: o.optionalBoolean('IsBillable'),
    IsPersonalCardCharge: o.optionalBoolean('IsPersonalCardCharge'),
    HasImage: o.optionalBoolean('HasImage'),
    IsImageRequired: o.optionalBoolean('IsImageRequired'),
    ReceiptReceived: o.optionalBoolean('ReceiptReceived'),
    TaxReceiptType: o.nullableString('TaxReceiptType'),
    ElectronicReceiptID: o.nullableString('ElectronicReceiptID'),
    CompanyCardTransactionID: o.nullableString('CompanyCardTransactionID'),
    TripID: o.nullableString('TripID'),
    HasItemizations: o.optionalBoolean('HasItemizations'),
    AllocationType: o.optionalString('AllocationType'),
    HasAttendees: o.optionalBoolean('HasAttendees'),
    HasVAT: o.optionalBoolean('HasVAT'),
    HasAppliedCashAdvance: o.optionalBoolean('HasAppliedCashAdvance'),
    HasComments: o.optionalBoolean('HasComments'),
    HasExceptions: o.optionalBoolean('HasExceptions'),
    IsPaidByExpensePay: o.optionalBoolean('IsPaidByExpensePay'),
    EmployeeBankAccountID: o.nullableString('EmployeeBankAccountID'),
    LastModified: o.optionalString('LastModified'),
    FormID: o.optionalString('FormID'),
  };
}

/**
 * Validates one page of `GET /api/v3.0/expense/entries?reportID=` and returns it typed.
 * https://developer.concur.com/api-reference/expense/expense-report/expense-entry.html
 * @throws ConcurPayloadError naming the first offending field (`malformed Concur entries page: Items[0].PostedAmount ...`).
 */
export function parseEntryCollection(json: unknown): EntryCollection {
  const page = JsonObject.root(json, 'Concur entries page');
  const next = page.get('NextPage');
  return {
    Items: page.array('Items').map((item) => readEntry(item.object())),
    NextPage: next.isAbsent || next.isNull ? null : next.string(),
  };
}

/** Validates one entry (`GET /api/v3.0/expense/entries/{id}`). */
export function parseEntry(json: unknown): Entry {
  return readEntry(JsonObject.root(json, 'Concur entry'));
}

function nonEmpty(s: string | null | undefined): string | undefined {
  const t = s?.trim();
  return t === undefined || t === '' ? undefined : t;
}

function expenseTypeName(entry: Entry): string {
  return nonEmpty(entry.ExpenseTypeName) ?? nonEmpty(entry.ExpenseTypeCode) ?? 'Expense';
}

/**
 * The entry's flags: {@link FLAG_EXCEPTIONS} when Concur reports exceptions on it, {@link FLAG_MISSING_RECEIPT}
 * when an image is required, none is attached, and no processor has confirmed a paper receipt.
 */
export function entryFlags(entry: Entry): string[] {
  const flags: string[] = [];
  if (entry.HasExceptions === true) flags.push(FLAG_EXCEPTIONS);
  if (entry.IsImageRequired === true && entry.HasImage !== true && entry.ReceiptReceived !== true) {
    flags.push(FLAG_MISSING_RECEIPT);
  }
  return flags;
}

/**
 * Summarises a report's entries for a card: the {@link TOP_LINES} largest by posted amount (label
 * "<expense type> · <vendor>"), the expense types with counts, report-level flags, count and total.
 * Amounts are `PostedAmount`, which Concur gives in the report currency, so `currency` is the report's.
 */
export function summariseEntries(entries: readonly Entry[], currency: string): LineItemSummary {
  const lines = entries.map((entry, index) => {
    const vendor = nonEmpty(entry.VendorDescription) ?? nonEmpty(entry.VendorListItemName);
    const type = expenseTypeName(entry);
    return {
      index,
      posted: entry.PostedAmount,
      line: {
        label: vendor === undefined ? type : `${type} · ${vendor}`,
        amount: concurMoney(entry.PostedAmount, currency),
        flags: entryFlags(entry),
      },
    };
  });
  const top = [...lines]
    .sort((a, b) => b.posted - a.posted || a.index - b.index)
    .slice(0, TOP_LINES)
    .map((l) => l.line);

  const typeCounts = new Map<string, number>();
  for (const entry of entries) {
    const name = expenseTypeName(entry);
    typeCounts.set(name, (typeCounts.get(name) ?? 0) + 1);
  }
  const expenseTypes = [...typeCounts]
    .map(([name, count]) => ({ name, count }))
    .sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const allFlags = new Set(lines.flatMap((l) => l.line.flags));
  return {
    count: entries.length,
    total: sumMoney(
      entries.map((e) => e.PostedAmount),
      currency,
    ),
    lines: top,
    expenseTypes,
    flags: [FLAG_EXCEPTIONS, FLAG_MISSING_RECEIPT].filter((f) => allFlags.has(f)),
  };
}
