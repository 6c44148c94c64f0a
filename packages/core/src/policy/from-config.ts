import type { CoreConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { Tool } from '../tool.js';
import { type AccessControl, createAccessControl } from './access-control.js';
import { createPolicyEngine } from './cedar-engine.js';
import { generateCedarSchema } from './cedar-schema.js';
import { createClassifier } from './labels.js';
import { createMemoryTaintStore, createRedisTaintStore, type TaintStore } from './taint.js';

/** What {@link createAccessControlFromConfig} needs. */
export interface AccessControlSetup {
  readonly config: Readonly<CoreConfig>;
  readonly serverName: string;
  readonly tools: readonly Tool<unknown>[];
  /** The shared Redis (`redis.url`), when configured: taint then spans servers. */
  readonly redisUrl?: string | undefined;
  readonly logger: Logger;
}

/**
 * Builds the access-control step from configuration: the Cedar engine (when `policies.files` is
 * set; the schema is generated from `tools`), the classifier and the taint store (Redis when
 * configured, else in-process). Always returns a control: classification defaults apply even
 * without labels (everything `internal`, principals cleared for `internal`).
 *
 * @throws StartupError when a policy file is unreadable or invalid, or a tool's resource
 *   declaration cannot form a schema.
 */
export async function createAccessControlFromConfig(
  setup: AccessControlSetup,
): Promise<{ control: AccessControl; close(): Promise<void> }> {
  const { config, logger } = setup;
  const engine =
    config.policies.files.length > 0
      ? await createPolicyEngine({
          files: config.policies.files,
          schema: generateCedarSchema(setup.tools),
          onReloadRejected: (reason) => logger.warn({ reason }, 'policy reload rejected'),
        })
      : undefined;
  if (engine) logger.info({ policies: engine.policies.map((p) => p.id) }, 'Cedar policies loaded');
  const taint: TaintStore = setup.redisUrl
    ? createRedisTaintStore(setup.redisUrl, config.classification.taint.ttlSeconds)
    : createMemoryTaintStore(config.classification.taint.ttlSeconds);
  const control = createAccessControl({
    serverName: setup.serverName,
    classifier: createClassifier(config.classification.labels, config.classification.default),
    classification: config.classification,
    policies: config.policies,
    engine,
    taint,
    limits: { maxRows: config.output.maxRows, maxBytes: config.output.maxBytes },
  });
  return { control, close: async () => taint.close?.() };
}
