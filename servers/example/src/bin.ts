#!/usr/bin/env node
import { runConnectorCli } from '@hardened-mcp/core';
import { exampleConnector } from './connector.js';

process.exitCode = await runConnectorCli(exampleConnector);
