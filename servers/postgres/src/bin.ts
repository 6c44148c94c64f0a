#!/usr/bin/env node
// The compile cache is enabled before the server's modules load (they are what it caches), so
// they are imported dynamically after it (compile-cache.ts imports only Node built-ins).
import { enablePrivateCompileCache } from './compile-cache.js';

enablePrivateCompileCache();
const { runConnectorCli } = await import('@hardened-mcp/core');
const { postgresConnector } = await import('./connector.js');

process.exitCode = await runConnectorCli(postgresConnector);
