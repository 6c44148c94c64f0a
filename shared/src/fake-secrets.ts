/**
 * Planted secrets the stateful fakes seed into their data (a Jira comment, a Slack message), so
 * tests can check the redactor catches them. Made-up values in the shape of real credentials,
 * never real ones: defined once here so every fake plants the same documented fake.
 */

/** A made-up value in the shape of a GitHub personal access token (`ghp_` + 36 characters). */
export const FAKE_PASTED_GITHUB_TOKEN = 'ghp_R8x2Lq9TzV4mW7nK3pY6sD1fH5jB0cA2eG4i';
