#!/usr/bin/env node
import { runConnectorCli } from '@hardened-mcp/core';
import { jiraConnector } from './connector.js';

process.exitCode = await runConnectorCli(jiraConnector);
