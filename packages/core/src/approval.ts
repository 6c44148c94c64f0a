/**
 * Pipeline step 6: a human approves each write before it runs.
 *
 * Transport-neutral: the MCP binding implements {@link ApprovalChannel} with `elicitation/create`
 * (MCP 2025-11-25, client feature "Elicitation", form mode). A client without the elicitation
 * capability cannot approve, so writes that require approval are refused.
 */

/** The human's answer. `unavailable`: the client cannot be asked. */
export type ApprovalResult = 'approved' | 'declined' | 'cancelled' | 'unavailable';

/** How the pipeline asks for approval during one call. */
export interface ApprovalChannel {
  /** Whether the connected client can be asked at all. */
  readonly supported: boolean;
  /**
   * Asks the human. `message` is plain text describing the change. Resolves `cancelled` on
   * timeout or transport failure; never throws.
   */
  request(message: string, signal: AbortSignal): Promise<ApprovalResult>;
}

/** A channel for clients that cannot be asked (and for tests): everything is `unavailable`. */
export const NO_APPROVAL_CHANNEL: ApprovalChannel = Object.freeze({
  supported: false,
  request: async () => 'unavailable' as const,
});

/** The JSON schema of the approval form (a single required boolean). */
export const APPROVAL_FORM_SCHEMA = Object.freeze({
  type: 'object' as const,
  properties: {
    approve: {
      type: 'boolean' as const,
      title: 'Approve this change',
      description: 'Set to true to let the tool make the change described above.',
      default: false,
    },
  },
  required: ['approve'],
});

/**
 * Maps an elicitation result (`{ action, content }`) to an approval result: only `accept` with
 * `approve: true` approves.
 */
export function approvalFromElicitation(result: {
  readonly action: string;
  readonly content?: Readonly<Record<string, unknown>> | undefined;
}): ApprovalResult {
  if (result.action === 'accept') return result.content?.approve === true ? 'approved' : 'declined';
  if (result.action === 'decline') return 'declined';
  return 'cancelled';
}

/**
 * Whether a tool's configuration alone asks a human before each call: a write tool unless
 * `tools.settings.<tool>.approval` is `none`, any tool (read tools included) when it is
 * `required`. Access control may add reasons per call on top (restricted data, Cedar
 * `@approval`). The one rule the pipeline enforces and `--print-policy` prints.
 */
export function configuredApproval(
  access: 'read' | 'write',
  setting: 'required' | 'none' | undefined,
): boolean {
  return setting === 'required' || (access === 'write' && setting !== 'none');
}
