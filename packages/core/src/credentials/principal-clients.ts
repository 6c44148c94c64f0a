import type { PrincipalCredentialsSettings } from '../config.js';
import type { ConnectorContext, ConnectorDefinition } from '../connector.js';
import { type CredentialHandle, loadCredential, Secret } from '../credentials.js';
import { ErrorCode, StartupError, ToolError } from '../errors.js';
import type { Identity } from '../identity.js';
import type { CredentialScope } from '../tool.js';
import { subjectTokenOf } from './subject-token.js';
import { TokenExchanger } from './token-exchange.js';

/** Principal ids a secret name template accepts (Secrets Manager name characters, no `/`). */
const TEMPLATE_PRINCIPAL = /^[A-Za-z0-9_+=.@-]{1,128}$/;

/** Per-call upstream clients opened with the caller's own credential. */
export interface PrincipalClients<C> {
  /**
   * The client a call of `identity` on `scope` executes with: opened by the connector's
   * `openClient` with the principal's credential (cached per scope and principal, reopened when
   * the credential changes), or `shared` for scopes not configured, or — only with
   * `fallback: service` — when the principal has no credential.
   *
   * @throws ToolError `forbidden` when the principal has no credential (no access token to
   *   exchange, the exchange or secret refused) and the fallback is `refuse`;
   *   `upstream_unavailable` when the authorization server, the secret store or the upstream
   *   cannot be reached.
   */
  clientFor(scope: CredentialScope, identity: Identity, shared: C | undefined): Promise<C>;
  /** Closes every per-principal client. */
  close(): Promise<void>;
}

interface Entry<C> {
  readonly client: C;
  /** The credential the client was opened with (token exchange: the token's value). */
  readonly value: string;
}

/** What {@link createPrincipalClients} needs beyond the settings. */
export interface PrincipalClientsOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Called with every credential value before use (register it with the redactor). */
  readonly onSecret: (secret: Secret) => void;
}

/**
 * Builds the per-principal credential source of `principalCredentials` (see config.ts):
 * RFC 8693 token exchange of the caller's access token ({@link TokenExchanger}), or a
 * per-principal Secrets Manager secret named by a template. The connector's `openClient` gets
 * the principal's credential exactly as it gets the service credential, so tools do not change.
 * The caller's own token is never handed to the connector.
 *
 * @throws StartupError when the token endpoint's client secret cannot be loaded.
 */
export async function createPrincipalClients<S, C>(
  def: ConnectorDefinition<S, C>,
  ctx: ConnectorContext<S>,
  settings: PrincipalCredentialsSettings,
  options: PrincipalClientsOptions,
): Promise<PrincipalClients<C>> {
  let exchanger: TokenExchanger | undefined;
  if (settings.tokenExchange) {
    const secret = await loadCredential(settings.tokenExchange.clientSecret, options.env, {
      onSecret: options.onSecret,
    });
    if (!secret)
      throw new StartupError(
        'principalCredentials.tokenExchange.clientSecret: the configured source is empty',
      );
    exchanger = new TokenExchanger(settings.tokenExchange, secret, { onSecret: options.onSecret });
  }
  const entries = new Map<string, Entry<C>>();
  /** Secret template: one handle per principal (it caches its value for its `ttlSeconds`). */
  const secrets = new Map<string, CredentialHandle>();
  const opening = new Map<string, Promise<C>>();
  const refuse = (why: string): never => {
    throw new ToolError(ErrorCode.Forbidden, `no per-principal credential: ${why}`);
  };

  /** The principal's credential, or undefined to use the shared client (fallback: service). */
  const credentialOf = async (identity: Identity): Promise<CredentialHandle | undefined> => {
    const service = settings.fallback === 'service';
    if (exchanger) {
      const subject = subjectTokenOf(identity);
      if (!subject)
        return service ? undefined : refuse('the call carries no access token to exchange');
      try {
        const { token } = await exchanger.tokenFor(identity.principal, subject);
        return new Secret(
          token.reveal(),
          `token exchange for ${exchanger.audience} (principal ${identity.principal})`,
        );
      } catch (err) {
        if (service && err instanceof ToolError && err.code === ErrorCode.Forbidden)
          return undefined;
        throw err;
      }
    }
    const template = settings.secretTemplate!.secretsManager;
    if (!TEMPLATE_PRINCIPAL.test(identity.principal))
      return service ? undefined : refuse('the principal id cannot name a secret');
    const { secretIdTemplate, ...rest } = template;
    const known = secrets.get(identity.principal);
    if (known) return known;
    try {
      const handle = await loadCredential(
        {
          secretsManager: {
            ...rest,
            secretId: secretIdTemplate.replaceAll('{principal}', identity.principal),
          },
        },
        options.env,
        { onSecret: options.onSecret },
      );
      if (handle) {
        secrets.set(identity.principal, handle);
        if (secrets.size > settings.maxClients) {
          const oldest = secrets.keys().next().value;
          if (oldest !== undefined) secrets.delete(oldest);
        }
      }
      return handle;
    } catch (err) {
      if (service) return undefined;
      throw new ToolError(
        ErrorCode.Forbidden,
        'no per-principal credential: the secret could not be fetched',
        {
          cause: err,
        },
      );
    }
  };

  const evict = async () => {
    while (entries.size > settings.maxClients) {
      const [key, oldest] = entries.entries().next().value ?? [];
      if (key === undefined || !oldest) break;
      entries.delete(key);
      await Promise.resolve(def.closeClient(oldest.client)).catch(() => undefined);
    }
  };

  return {
    async clientFor(scope, identity, shared) {
      if (!settings.scopes.includes(scope)) {
        if (shared === undefined)
          throw new ToolError(ErrorCode.Internal, 'no client for the scope');
        return shared;
      }
      const credential = await credentialOf(identity);
      if (!credential) {
        if (shared === undefined) return refuse('no service credential to fall back to');
        return shared;
      }
      const key = `${scope}\u0000${identity.principal}`;
      const value = credential.current().reveal();
      const entry = entries.get(key);
      if (entry && entry.value === value) {
        // Most recently used last.
        entries.delete(key);
        entries.set(key, entry);
        return entry.client;
      }
      const pending = opening.get(key);
      if (pending) return pending;
      const open = (async () => {
        let client: C;
        try {
          client = await def.openClient(scope, credential, ctx);
        } catch (err) {
          throw new ToolError(
            ErrorCode.UpstreamUnavailable,
            'the upstream refused the per-principal credential',
            {
              cause: err,
            },
          );
        }
        const old = entries.get(key);
        entries.delete(key);
        entries.set(key, { client, value });
        if (old) await Promise.resolve(def.closeClient(old.client)).catch(() => undefined);
        await evict();
        return client;
      })().finally(() => opening.delete(key));
      opening.set(key, open);
      return open;
    },
    async close() {
      for (const e of entries.values())
        await Promise.resolve(def.closeClient(e.client)).catch(() => undefined);
      entries.clear();
    },
  };
}
