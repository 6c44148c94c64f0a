#!/bin/sh
# Creates the secret files of the compose evaluation stack (compose.yaml at the repo root) in
# servers/postgres/compose/secrets/, with fresh random passwords and a fresh API key:
#   postgres_admin_password   the PostgreSQL superuser's password (read by the db container)
#   postgres_read_password    the password of the read role mcp_read (read by init.sql)
#   postgres_read_url         the server's read credential, a URL for mcp_read (read by the server)
#   mcp_api_key               the API key MCP clients of the HTTP service send as
#                             `Authorization: Bearer <key>` (read by you, with sudo)
#   config-http.yaml          the HTTP service's configuration: config-http.template.yaml with
#                             the key's SHA-256 filled in (not secret, but made per installation)
# Secret files are bind-mounted with their host owner and mode, and the server refuses a
# credential file that other users can read: each file is made 0400 and owned by the uid that
# reads it (999 = postgres in the postgres image, 65532 = nonroot in the server image), which
# needs root (sudo) with a rootful engine. With rootless Podman, run it under `podman unshare`.
# Existing files are kept (the database secrets and the API key are created independently, so
# running it again after an upgrade adds what is missing); delete the directory (and the db
# volume) to start over.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
dir="$here/secrets"
umask 077
mkdir -p "$dir"
password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -d' ' -f1
}
created=""

if [ ! -e "$dir/postgres_read_url" ]; then
  read_password="$(password)"
  password >"$dir/postgres_admin_password"
  printf '%s' "$read_password" >"$dir/postgres_read_password"
  printf 'postgres://mcp_read:%s@db:5432/evaluation' "$read_password" >"$dir/postgres_read_url"
  chmod 0400 "$dir/postgres_admin_password" "$dir/postgres_read_password" "$dir/postgres_read_url"
  if ! { chown 999:999 "$dir/postgres_admin_password" "$dir/postgres_read_password" 2>/dev/null &&
    chown 65532:65532 "$dir/postgres_read_url" 2>/dev/null; }; then
    echo "created the database secrets in $dir, but could not chown them (not root): run this" >&2
    echo "script with sudo, or chown them yourself: 999:999 for the two passwords, 65532:65532" >&2
    echo "for the URL." >&2
    exit 1
  fi
  created="$created database"
fi

if [ ! -e "$dir/mcp_api_key" ] || [ ! -e "$dir/config-http.yaml" ]; then
  api_key="hmcp_$(password)"
  digest="$(printf '%s' "$api_key" | sha256)"
  sed "s/MCP_API_KEY_SHA256/$digest/" "$here/config-http.template.yaml" >"$dir/config-http.yaml"
  grep -q "sha256: $digest" "$dir/config-http.yaml"
  printf '%s' "$api_key" >"$dir/mcp_api_key"
  # The server (uid 65532) reads the configuration; it holds the key's hash, not the key.
  chmod 0444 "$dir/config-http.yaml"
  chmod 0400 "$dir/mcp_api_key"
  created="$created api-key"
fi

if [ -n "$created" ]; then
  echo "created in $dir:$created"
else
  echo "secrets already exist in $dir"
fi
