import { formatHost } from './request-guards.js';

/** The authorization server and scopes named in the metadata (oauth mode). */
export interface OAuthMetadataOptions {
  readonly issuer: string;
  readonly scopesSupported?: readonly string[] | undefined;
}

/** Where this server is reached and where its RFC 9728 metadata lives. */
export interface ResourceLocation {
  /**
   * The canonical resource URL (RFC 8707 §2, RFC 9728 §2 `resource`): `http.publicUrl`, else the
   * bound address, e.g. `http://127.0.0.1:3000/mcp`. The server announces and logs exactly this
   * URL, tokens must carry it as `aud`, and a client pointed at it finds it in the metadata.
   */
  readonly resource: string;
  /** Absolute URL of the metadata document (RFC 9728 §3.1: well-known prefix + resource path). */
  readonly metadataUrl: string;
  /** Paths on this listener that serve the metadata document. */
  readonly metadataPaths: ReadonlySet<string>;
}

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

/**
 * Computes the canonical resource URL and the metadata location.
 *
 * @param publicUrl - `http.publicUrl` (behind a proxy), or undefined
 * @param scheme - `http` or `https` (in-process TLS)
 * @param host - the bind address
 * @param port - the bound port
 */
export function resourceLocation(
  publicUrl: string | undefined,
  scheme: 'http' | 'https',
  host: string,
  port: number,
): ResourceLocation {
  const resource = publicUrl ?? `${scheme}://${formatHost(host)}:${port}/mcp`;
  const url = new URL(resource);
  const path = `${WELL_KNOWN}${url.pathname === '/' ? '' : url.pathname}`;
  return {
    resource,
    metadataUrl: `${url.origin}${path}`,
    // The bare well-known path and `/mcp` suffix are served too: behind a proxy that rewrites
    // the resource path (e.g. /postgres/mcp → /mcp) the request arrives without the prefix.
    metadataPaths: new Set([WELL_KNOWN, `${WELL_KNOWN}/mcp`, path]),
  };
}

/**
 * The protected resource metadata document (RFC 9728 §2): `resource`, the authorization server,
 * `bearer_methods_supported: ["header"]` (RFC 6750 §2.1 only), and the scopes when configured.
 */
export function metadataDocument(
  location: ResourceLocation,
  oauth: OAuthMetadataOptions,
  resourceName: string,
): Record<string, unknown> {
  return {
    resource: location.resource,
    authorization_servers: [oauth.issuer],
    bearer_methods_supported: ['header'],
    ...(oauth.scopesSupported ? { scopes_supported: oauth.scopesSupported } : {}),
    resource_name: resourceName,
  };
}

/** Builds `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1). */
export interface Challenges {
  /**
   * A 401/400 challenge. In oauth mode it names the metadata (`resource_metadata`) and the
   * scopes a client should request (`scope`, MCP 2025-11-25 Authorization §"Scope Selection
   * Strategy"); `error`/`error_description` when a credential was sent but refused.
   */
  refused(error?: string, description?: string): string;
  /** A 403 `insufficient_scope` challenge naming the scopes the request needs (RFC 6750 §3.1). */
  insufficientScope(scope: string): string;
}

/**
 * @param metadataUrl - the metadata URL when it is served (oauth mode), else undefined: api-key
 *   mode answers a plain `Bearer` challenge
 * @param scope - space-separated scopes for the 401 challenge (oauth mode)
 */
export function challenges(
  metadataUrl: () => string | undefined,
  scope: string | undefined,
): Challenges {
  const quote = (v: string) => `"${v.replace(/["\\]/g, '')}"`;
  const oauthParams = (): string[] => {
    const url = metadataUrl();
    if (url === undefined) return [];
    return [`resource_metadata=${quote(url)}`, ...(scope ? [`scope=${quote(scope)}`] : [])];
  };
  return {
    refused(error, description) {
      const params = oauthParams();
      if (error) params.push(`error=${quote(error)}`);
      if (error && description) params.push(`error_description=${quote(description)}`);
      return params.length > 0 ? `Bearer ${params.join(', ')}` : 'Bearer';
    },
    insufficientScope(needed) {
      const url = metadataUrl();
      return `Bearer ${[
        'error="insufficient_scope"',
        `scope=${quote(needed)}`,
        ...(url === undefined ? [] : [`resource_metadata=${quote(url)}`]),
        'error_description="the token lacks a scope this tool requires"',
      ].join(', ')}`;
    },
  };
}
