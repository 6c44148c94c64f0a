#!/usr/bin/env node
import { runConnectorCli } from '@hardened-mcp/core';
import { postgresConnector } from './connector.js';

process.exitCode = await runConnectorCli(postgresConnector);
