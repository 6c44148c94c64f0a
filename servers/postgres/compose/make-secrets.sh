#!/bin/sh
# Creates the three secret files of the compose evaluation stack (compose.yaml at the repo
# root) in servers/postgres/compose/secrets/, with fresh random passwords:
#   postgres_admin_password   the PostgreSQL superuser's password (read by the db container)
#   postgres_read_password    the password of the read role mcp_read (read by init.sql)
#   postgres_read_url         the server's read credential, a URL for mcp_read (read by the server)
# Secret files are bind-mounted with their host owner and mode, and the server refuses a
# credential file that other users can read: each file is made 0400 and owned by the uid that
# reads it (999 = postgres in the postgres image, 65532 = nonroot in the server image), which
# needs root (sudo) with a rootful engine. With rootless Podman, run it under `podman unshare`.
# Existing files are kept; delete the directory (and the db volume) to start over.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
if [ -e "$dir/postgres_read_url" ]; then
  echo "secrets already exist in $dir"
  exit 0
fi
umask 077
mkdir -p "$dir"
password() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
read_password="$(password)"
password >"$dir/postgres_admin_password"
printf '%s' "$read_password" >"$dir/postgres_read_password"
printf 'postgres://mcp_read:%s@db:5432/evaluation' "$read_password" >"$dir/postgres_read_url"
chmod 0400 "$dir"/*
if chown 999:999 "$dir/postgres_admin_password" "$dir/postgres_read_password" 2>/dev/null &&
  chown 65532:65532 "$dir/postgres_read_url" 2>/dev/null; then
  echo "created $dir"
else
  echo "created $dir, but could not chown the files (not root): run this script with sudo," >&2
  echo "or chown them yourself: 999:999 for the two passwords, 65532:65532 for the URL." >&2
  exit 1
fi
