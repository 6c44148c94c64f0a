export {
  type AccessCall,
  type AccessControl,
  type AccessControlOptions,
  type AccessRefusal,
  type AccessVerdict,
  type CallSession,
  clearanceOf,
  createAccessControl,
} from './access-control.js';
export {
  type CedarDecision,
  type CedarRequest,
  createPolicyEngine,
  type LoadedPolicy,
  type PolicyEngine,
  type PolicyEngineOptions,
  type PolicyEngineStats,
} from './cedar-engine.js';
export { CEDAR_NAMESPACE, generateCedarSchema, SERVER_RESOURCE_TYPE } from './cedar-schema.js';
export {
  type Classifier,
  createClassifier,
  LABELS,
  type Label,
  labelRank,
  maxLabel,
} from './labels.js';
export {
  type ClassificationConfig,
  classificationConfigSchema,
  labelSchema,
  type PoliciesConfig,
  policiesConfigSchema,
} from './policy-config.js';
export {
  describeCredentialSource,
  type EffectivePolicy,
  effectivePolicy,
  type PrintedTool,
  policyToMarkdown,
} from './print-policy.js';
export {
  CONVERSATION_META_KEY,
  conversationIdFromMeta,
  createMemoryTaintStore,
  createRedisTaintStore,
  MAX_TAINT_PATHS,
  type Taint,
  type TaintStore,
} from './taint.js';
