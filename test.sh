#!/usr/bin/env bash
# Cairn's single test command.
#
#   bash test.sh
#
# Installs what the tests need (Debian packages incl. chromium for the dashboard test, the kafkajs driver's node packages),
# builds the solution in Release, runs tests/Cairn.Tests and tests/Cairn.Interop.Tests, and
# ends with one line "N passed, M failed". Exits non-zero if anything failed. The dashboard screenshot is saved
# as TestResults/artifacts/dashboard.png.
# Runs non-interactively as root (CI=true, no stdin); uses sudo -n when not root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export NUGET_XMLDOC_MODE=skip

say() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else echo "test.sh: need root to run: $*" >&2; return 1
  fi
}

# ----------------------------------------------------------------------------- system packages
# The Python drivers run under Debian's /usr/bin/python3: python3-kafka and python3-confluent-kafka
# import only there (not under a pyenv python3 that may come first on PATH).
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
py_has() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
[ -x /usr/bin/python3 ] || need+=(python3)
py_has kafka || need+=(python3-kafka)
py_has confluent_kafka || need+=(python3-confluent-kafka)
py_has snappy || need+=(python3-snappy)        # kafka-python snappy codec
py_has lz4.frame || need+=(python3-lz4)        # kafka-python lz4 codec
py_has zstandard || need+=(python3-zstandard)  # kafka-python zstd codec
for p in librdkafka-dev liblz4-1 libzstd1 postgresql; do
  pkg_installed "$p" || need+=("$p")
done
# Headless Chromium for the admin dashboard test (driven over the DevTools protocol; no browser download).
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ "${#need[@]}" -gt 0 ]; then
  say "installing: ${need[*]}"
  as_root apt-get update -qq
  available=()
  for p in "${need[@]}"; do
    if apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then
      available+=("$p")
    else
      echo "test.sh: no Debian package '$p' here; skipping it" >&2
    fi
  done
  if [ "${#available[@]}" -gt 0 ]; then
    as_root apt-get install -y -qq --no-install-recommends "${available[@]}" </dev/null
  fi
fi

# ----------------------------------------------------------------------------- node packages
NODE_DIR="$ROOT/tests/Cairn.Interop.Tests/clients/node"
if [ ! -d "$NODE_DIR/node_modules/kafkajs" ] || [ ! -d "$NODE_DIR/node_modules/kafkajs-snappy" ]; then
  say "npm ci in $NODE_DIR"
  (cd "$NODE_DIR" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; }) </dev/null
fi

# ----------------------------------------------------------------------------- build
say "dotnet build Cairn.slnx -c Release"
if ! dotnet build Cairn.slnx -c Release -nologo -clp:ErrorsOnly </dev/null; then
  echo "test.sh: build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# ----------------------------------------------------------------------------- tests
RESULTS="$ROOT/TestResults"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

passed=0
failed=0
skipped=0
status=0

run_tests() {
  local project="$1"; shift
  local name
  name="$(basename "$project")"
  if [ ! -d "$ROOT/$project" ]; then
    echo "test.sh: $project not found; skipping" >&2
    return
  fi
  say "dotnet test $project"
  local rc=0
  dotnet test "$ROOT/$project" -c Release --no-build -nologo \
    --results-directory "$RESULTS" \
    --logger "trx;LogFileName=$name.trx" \
    --logger "console;verbosity=normal" \
    "$@" </dev/null || rc=$?

  local trx="$RESULTS/$name.trx"
  if [ ! -f "$trx" ]; then
    echo "test.sh: $name produced no results (exit code $rc)" >&2
    failed=$((failed + 1))
    status=1
    return
  fi
  # <Counters total=".." executed=".." passed=".." failed=".." error=".." timeout=".." aborted=".." ... notExecuted=".." .../>
  local counters
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n1)"
  attr() { printf '%s' "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  local p f e t a n
  p="$(attr passed)"; f="$(attr failed)"; e="$(attr error)"; t="$(attr timeout)"; a="$(attr aborted)"; n="$(attr notExecuted)"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
  skipped=$((skipped + ${n:-0}))
  echo "test.sh: $name: passed ${p:-0}, failed $(( ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0} )), skipped ${n:-0} (dotnet test exit code $rc)"
  if [ "$rc" -ne 0 ]; then status=1; fi
}

run_tests tests/Cairn.Tests
# Interop tests start brokers and client processes; a hung test host is cut off after 10 minutes.
run_tests tests/Cairn.Interop.Tests --blame-hang --blame-hang-timeout 10m --blame-hang-dump-type none

if [ "$failed" -gt 0 ]; then status=1; fi

echo
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
exit "$status"
