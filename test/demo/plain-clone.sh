#!/usr/bin/env bash
# The README's Quick start as a new user meets it: a plain `git clone` with no ../shared kit
# beside it, on a machine with Node.js and npm but no global pnpm (and no corepack).
#
#   1. clones the checkout's current commit into a fresh temp folder (nothing beside it);
#   2. builds a PATH without pnpm, pnpx or corepack, whose node/npm/npx live in a folder of
#      their own (npm puts node's folder on every script's PATH, and a global pnpm usually sits
#      beside node);
#   3. runs the README's commands there, as written (the script first checks that README.md
#      shows them): `npx --yes pnpm@<packageManager> install` and `npx --yes pnpm@<packageManager>
#      demo` (`--yes`: an npm configured with `yes=false` otherwise refuses to fetch pnpm),
#      asserting success on the generated data set;
#   4. makes the demo fail twice and asserts one line on stderr, exit code 1, no hang and no
#      PostgreSQL left running: once when the embedded PostgreSQL cannot start (its port is
#      taken), once after it started (Chinook forced with HMCP_DEMO_DATASET=chinook, but absent).
#
# Usage: bash test/demo/plain-clone.sh [REPO_DIR]   (default: the repository holding this script)
# Run by .ci/run. Needs git, Node.js with npm, and the npm registry (npx fetches pnpm; packages
# come from the local pnpm store when present). The temp folder is removed at exit.
set -euo pipefail

repo="$(cd "${1:-"$(dirname "$0")/../.."}" && pwd)"
pm="$(node -p "require(process.argv[1]).packageManager" "$repo/package.json")"
if [[ ! "$pm" =~ ^pnpm@[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "plain-clone: package.json packageManager must pin pnpm@X.Y.Z, got '$pm'" >&2
  exit 1
fi
commit="$(git -C "$repo" rev-parse HEAD)"
# The commands below are the README's, character for character: keep them in step.
for command in "npx --yes $pm install && npx --yes $pm demo" "npx --yes $pm test"; do
  if ! grep -qF "$command" "$repo/README.md"; then
    echo "plain-clone: README.md does not show \`$command\` (packageManager is $pm)" >&2
    exit 1
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/hmcp-plain-clone-XXXXXX")"
# The embedded PostgreSQL runs as the OS user postgres when we are root: it must be able to
# traverse the clone to reach the binaries that pnpm installs there.
chmod 755 "$work"
blocker_pid=""
cleanup() {
  if [[ -n "$blocker_pid" ]]; then kill "$blocker_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "plain-clone: FAILED: $*" >&2
  for log in "$work"/*.log; do
    [[ -f "$log" ]] || continue
    echo "--- $(basename "$log") (last 40 lines) ---" >&2
    tail -n 40 "$log" >&2
  done
  exit 1
}

echo "plain-clone: cloning $commit into $work/repo (no ../shared beside it)"
git clone --quiet --no-checkout "$repo" "$work/repo"
git -C "$work/repo" checkout --quiet --detach "$commit"
[[ ! -e "$work/shared" ]] || fail "$work/shared exists"

# A PATH like a fresh machine's: every tool of the current PATH except pnpm, pnpx, corepack,
# with node (a copy) and npm/npx in a folder that holds nothing else.
mkdir -p "$work/node/bin" "$work/bin"
cp "$(readlink -f "$(command -v node)")" "$work/node/bin/node"
npm_bin="$(dirname "$(readlink -f "$(command -v npm)")")"
ln -s "$npm_bin/npm-cli.js" "$work/node/bin/npm"
ln -s "$npm_bin/npx-cli.js" "$work/node/bin/npx"
IFS=: read -r -a path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  [[ -d "$dir" ]] || continue
  for tool in "$dir"/*; do
    name="$(basename "$tool")"
    case "$name" in pnpm | pnpx | corepack | node | npm | npx) continue ;; esac
    [[ -e "$work/bin/$name" ]] || ln -s "$tool" "$work/bin/$name"
  done
done
export PATH="$work/node/bin:$work/bin"
if command -v pnpm >/dev/null 2>&1; then fail "pnpm is still on PATH: $(command -v pnpm)"; fi
echo "plain-clone: PATH has no pnpm; node $(node --version), npm $(npm --version)"

cd "$work/repo"
echo "plain-clone: npx --yes $pm install"
timeout 900 npx --yes "$pm" install >"$work/install.log" 2>&1 || fail "npx --yes $pm install"
echo "plain-clone: installed (${SECONDS}s so far)"

echo "plain-clone: npx --yes $pm demo"
timeout 600 npx --yes "$pm" demo >"$work/demo.log" 2>"$work/demo-stderr.log" ||
  fail "npx --yes $pm demo exited $?"
grep -q 'data set: generated sample data' "$work/demo.log" || fail "the demo did not use the generated data set"
grep -q 'hash chain verified' "$work/demo.log" || fail "the demo did not verify the audit trail"
grep -q 'REDACTED:' "$work/demo.log" || fail "the demo output shows no redaction"
echo "plain-clone: demo OK on the generated data set (${SECONDS}s so far)"

node24="$work/repo/node_modules/node/bin/node"
free_port() { "$node24" -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# Asserts: exit code 1 (not 124: a hang), exactly one line on stderr matching $3, and no process
# left that mentions `-p <port>` (the embedded postgres command line).
expect_one_line_failure() {
  local label="$1" code="$2" pattern="$3" port="$4" stderr_file="$5"
  [[ "$code" == 1 ]] || fail "$label: exit code $code, expected 1 (124 means it hung)"
  [[ "$(grep -c '' "$stderr_file")" == 1 ]] || fail "$label: stderr is not one line: $(cat "$stderr_file")"
  grep -Eq "$pattern" "$stderr_file" || fail "$label: unexpected stderr: $(cat "$stderr_file")"
  local pid
  for pid in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$pid/cmdline"; } 2>/dev/null | grep -Eq -- "/bin/postgres -D .* -p $port( |$)"; then
      fail "$label: a postgres process is still running on port $port"
    fi
  done
  echo "plain-clone: $label: one line, exit 1, no postgres left: $(cat "$stderr_file")"
}

port="$(free_port)"
"$node24" -e "require('net').createServer().listen(+process.argv[1],'127.0.0.1')" "$port" &
blocker_pid=$!
sleep 1
set +e
HMCP_TEST_PG=embedded HMCP_TEST_PG_PORT="$port" DATABASE_URL='' timeout 150 "$node24" test/demo/demo.ts \
  >"$work/fail-start.log" 2>"$work/fail-start-stderr.log"
code=$?
set -e
kill "$blocker_pid" 2>/dev/null || true
blocker_pid=""
expect_one_line_failure "embedded PostgreSQL cannot start" "$code" \
  '^demo failed: Failed to start the embedded PostgreSQL' "$port" "$work/fail-start-stderr.log"

port="$(free_port)"
set +e
HMCP_DEMO_DATASET=chinook HMCP_TEST_PG=embedded HMCP_TEST_PG_PORT="$port" DATABASE_URL='' \
  timeout 150 "$node24" test/demo/demo.ts >"$work/fail-load.log" 2>"$work/fail-load-stderr.log"
code=$?
set -e
grep -q 'embedded PostgreSQL' "$work/fail-load.log" || fail "Chinook missing: PostgreSQL was not started first"
expect_one_line_failure "Chinook missing after PostgreSQL started" "$code" \
  '^demo failed: The Chinook sample database is missing' "$port" "$work/fail-load-stderr.log"

echo "plain-clone: OK (${SECONDS}s)"
