#!/usr/bin/env node
import { runConnectorCli } from '@hardened-mcp/core';
import { slackConnector } from './connector.js';

process.exitCode = await runConnectorCli(slackConnector);
