#!/usr/bin/env node
/**
 * The `hardened-mcp-audit` bin: runs {@link main} of `./audit-cli.js` with the process's
 * arguments and exits with its code (0 chain intact, 1 tampered, 2 usage error or unreadable
 * file).
 *
 * A separate entry file because `audit-cli.js` runs itself only when `import.meta.main` is true,
 * which Node.js has from 22.18 and 24.2: on Node 20 it is undefined, and the bin printed nothing
 * and exited 0. This file runs whenever it is executed, on every Node.js the package supports
 * (`engines`: >= 20.19).
 *
 * @module
 */
import { main } from './audit-cli.js';

process.exitCode = await main(process.argv.slice(2));
