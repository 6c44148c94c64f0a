#!/usr/bin/env node
import { runConnectorCli } from '@hardened-mcp/core';
import { s3Connector } from './connector.js';

process.exitCode = await runConnectorCli(s3Connector);
