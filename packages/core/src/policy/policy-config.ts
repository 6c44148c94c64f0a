import { z } from 'zod';
import { LABELS } from './labels.js';

/** A classification label (`public | internal | confidential | restricted`). */
export const labelSchema = z.enum(LABELS);

/**
 * The `policies:` configuration section: Cedar policies as code (see README "Policies").
 * Absent or with no `files`, the Cedar step is off and scopes alone decide.
 */
export const policiesConfigSchema = z
  .strictObject({
    /** Cedar policy files (`.cedar`), read at startup and on SIGHUP; validated against the generated schema. */
    files: z.array(z.string().min(1).max(4096)).max(64).default([]),
    /**
     * JWT claim names of the principal's attributes (HTTP). For stdio the same names are looked up
     * in the identity's attributes (`Identity.attributes`: verified token claims, or `identity.claims` over stdio).
     */
    claims: z
      .strictObject({
        groups: z.string().min(1).max(128).default('groups'),
        department: z.string().min(1).max(128).default('department'),
        clearance: z.string().min(1).max(128).default('clearance'),
      })
      .prefault({}),
    /** IANA time zone of `context.time` (hour, weekday), e.g. `Europe/Paris`. */
    timeZone: z
      .string()
      .min(1)
      .max(64)
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'not an IANA time zone')
      .default('UTC'),
  })
  .prefault({});

/** See {@link policiesConfigSchema}. */
export type PoliciesConfig = z.infer<typeof policiesConfigSchema>;

/**
 * The `classification:` configuration section (see README "Classification"). Safe defaults:
 * unlabelled data is `internal`, principals are cleared for `internal`, restricted data is
 * capped smaller and needs approval even to read, and a session that has read `confidential` or
 * above cannot use egress tools.
 */
export const classificationConfigSchema = z
  .strictObject({
    /** Resource path → label (paths are the connector's: `schema.table.column`, `bucket/prefix`, a folder…). */
    labels: z.record(z.string().min(1).max(1024), labelSchema).default({}),
    /** Label of data no key matches. */
    default: labelSchema.default('internal'),
    clearance: z
      .strictObject({
        /** Clearance of a principal with no role or claim granting more. */
        default: labelSchema.default('internal'),
        /** Role → clearance; a principal gets the highest of its roles' and its `clearance` claim. */
        roles: z.record(z.string().min(1).max(64), labelSchema).default({}),
      })
      .prefault({}),
    restricted: z
      .strictObject({
        /** Row cap of a call touching `restricted` data. */
        maxRows: z.int().min(1).max(100_000).default(50),
        /** Byte cap of a call touching `restricted` data. */
        maxBytes: z
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(64 * 1024),
        /** A human approves every call touching `restricted` data, reads included. */
        approval: z.boolean().default(true),
      })
      .prefault({}),
    taint: z
      .strictObject({
        /** A session that received data at or above this label is tainted. */
        threshold: labelSchema.default('confidential'),
        /** What a tainted session's egress tools get: `refuse`, or `approve` (an approval naming what was read). */
        egress: z.enum(['refuse', 'approve']).default('refuse'),
        /** How long a conversation stays tainted in the shared store (Redis), seconds. */
        ttlSeconds: z
          .int()
          .min(60)
          .max(30 * 86_400)
          .default(86_400),
      })
      .prefault({}),
  })
  .prefault({});

/** See {@link classificationConfigSchema}. */
export type ClassificationConfig = z.infer<typeof classificationConfigSchema>;
