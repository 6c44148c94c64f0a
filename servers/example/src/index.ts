/**
 * `@hardened-mcp/example`: the example connector over an in-memory note store, and the template
 * `pnpm new-connector NAME` copies. Run it as the `hardened-mcp-example` bin.
 */
export type { ExampleClient } from './client.js';
export { type ExampleSettings, exampleSectionSchema, folderIdSchema } from './config.js';
export { exampleConnector, VERSION } from './connector.js';
export {
  DEMO_NOTES,
  type Note,
  type NotePage,
  type NoteReader,
  NoteStore,
  type NoteWriter,
} from './store.js';
export { createExampleTools, kit } from './tools.js';
