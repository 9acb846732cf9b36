import type { Row, SandboxInstance } from './sandbox-instance.js';
import { tableDef } from './sandbox-schema.js';

/** `sysparm_display_value`. */
export type DisplayMode = 'false' | 'true' | 'all';

export type RenderedValue = string | { readonly [key: string]: string };

export interface RenderOptions {
  readonly display: DisplayMode;
  readonly excludeReferenceLink: boolean;
  /** Requested fields (`sysparm_fields`), dot-walks allowed; undefined: every field of the table. */
  readonly fields: readonly string[] | undefined;
  readonly baseUrl: string;
}

/**
 * One record as the Table API answers it (docs/servicenow-api.md section 3): actual values, display
 * values or both, reference fields as objects with a `link` unless excluded. A requested field that the
 * table does not have is left out of the record.
 */
export function renderRow(instance: SandboxInstance, table: string, row: Row, o: RenderOptions): Record<string, RenderedValue> {
  const fields = o.fields ?? Object.keys(tableDef(table)?.fields ?? {});
  const out: Record<string, RenderedValue> = {};
  for (const path of fields) {
    const r = instance.resolve(table, row, path);
    if (!r) continue;
    const isRef = r.def.type === 'reference';
    const value = r.def.type === 'journal' ? '' : r.value;
    const link = isRef && value !== '' && !o.excludeReferenceLink ? `${o.baseUrl}/api/now/table/${r.def.reference}/${value}` : undefined;
    if (o.display === 'false') {
      out[path] = link ? { link, value } : value;
    } else if (o.display === 'true') {
      const shown = instance.display(r);
      out[path] = link ? { display_value: shown, link } : shown;
    } else {
      const shown = instance.display(r);
      out[path] = link ? { display_value: shown, link, value } : { display_value: shown, value };
    }
  }
  return out;
}
