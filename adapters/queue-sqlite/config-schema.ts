import type { ConfigSchema } from '../../core/index.js';

/**
 * The SQLite queue's `configSchema`: the one place it is written. Its config type is derived from it
 * (json-schema-to-ts `FromSchema`), and `npm run gen:manifests` writes it into plugin.json, the
 * data-only manifest the host reads; test/host/manifest-schemas.test.ts fails when they differ.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    path: {
      type: 'string',
      minLength: 1,
      default: 'approvals.db',
      description: "Database file; a relative path resolves against the deployment file's directory. Created with its directory if missing.",
    },
    cacheSizeMB: {
      type: 'integer',
      minimum: 1,
      maximum: 65536,
      default: 2,
      description: "SQLite's page cache (heap memory).",
    },
    mmapSizeMB: {
      type: 'integer',
      minimum: 0,
      maximum: 1048576,
      description:
        "Map up to this much of the file into memory for reads (0: off). Default 2048 on 64-bit platforms (SQLite's compiled maximum, just under 2 GiB; only as much as the file holds is mapped), 0 on 32-bit. The mapped pages read count in the process's RSS as reclaimable page cache.",
    },
  },
} as const satisfies ConfigSchema;
