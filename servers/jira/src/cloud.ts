/**
 * jira.js's Jira Cloud REST v3 functions, loaded on first use: the module is large, and loading
 * it lazily lets the bin start (and answer the container HEALTHCHECK) without it.
 */
export function cloud(): Promise<typeof import('jira.js/cloud')> {
  return import('jira.js/cloud');
}
