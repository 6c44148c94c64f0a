import { z } from 'zod';

/** A folder id: lower-case letters, digits and dashes (exact match, case-sensitive). */
export const folderIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'folder ids are lower-case letters, digits and dashes');

/**
 * The `example:` configuration section. Every key has a safe default; unknown keys are errors
 * (the core parses the whole file once with zod and freezes it).
 */
export const exampleSectionSchema = z
  .strictObject({
    /** Folders the tools may touch: `read` for every tool, `write` (a subset) for writes. */
    folders: z
      .strictObject({
        read: z.array(folderIdSchema).min(1).max(256).default(['general', 'support']),
        write: z.array(folderIdSchema).max(256).default(['support']),
      })
      .prefault({}),
    /**
     * Folder → owning department, for policies (`resource.department` of the Cedar `Folder`
     * entity; `""` when unset). Classification labels of folders go under `classification.labels`
     * with the folder id as path.
     */
    departments: z.record(folderIdSchema, z.string().min(1).max(64)).default({}),
    /** Channels `example_send_note` may post to (the fake outbound: an egress tool). */
    channels: z.array(folderIdSchema).max(64).default(['team-chat']),
    /** The store's first content: `demo` (realistic notes: PII, a pasted key, an injection attempt) or `empty`. */
    seed: z.enum(['demo', 'empty']).default('demo'),
    /** Longest note body the write tool accepts, in characters. */
    maxNoteChars: z.int().min(1).max(100_000).default(4000),
    /** Notes per page of `example_list_notes` at most. */
    maxPageSize: z.int().min(1).max(500).default(50),
  })
  .refine((s) => s.folders.write.every((f) => s.folders.read.includes(f)), {
    message: 'every folders.write entry must also be in folders.read',
    path: ['folders', 'write'],
  })
  .prefault({});

/** The parsed `example:` section. */
export type ExampleSettings = z.infer<typeof exampleSectionSchema>;
