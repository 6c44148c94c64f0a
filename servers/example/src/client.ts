import type { CredentialScope } from '@hardened-mcp/core';
import type { NoteReader, NoteWriter } from './store.js';

/**
 * The upstream client of one credential scope, as the core hands it to `execute`: the read
 * client can only read; only the write client carries a writer. A real connector holds a
 * connection pool or an HTTP client authenticated with the scope's credential here.
 */
export interface ExampleClient {
  readonly scope: CredentialScope;
  readonly notes: NoteReader;
  /** Present on the write client only. */
  readonly writer?: NoteWriter | undefined;
}
