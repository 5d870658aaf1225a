#!/usr/bin/env bash
# Cairn's single test command.
#
#   bash test.sh                 install what is missing, build, run every test
#   bash test.sh --install-only  install what is missing and check it is all there, then stop
#
# Installs what the tests need (Debian packages incl. chromium for the dashboard test and prometheus for promtool, the kafkajs
# driver's node packages),
# builds the solution in Release, runs tests/Cairn.Tests and tests/Cairn.Interop.Tests, and
# ends with one line "N passed, M failed". Exits non-zero if anything failed. The dashboard screenshot is saved
# as TestResults/artifacts/dashboard.png.
# A requirement that is still missing after the install step fails the run at once, naming it ("0 passed, 1 failed"):
# no test is skipped because a client is missing.
# TEST_SH_EXTRA_PACKAGES="pkg ..." adds Debian packages to the requirements (to check the install path itself).
# Runs non-interactively as root (CI=true, no stdin); uses sudo -n when not root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export NUGET_XMLDOC_MODE=skip

install_only=0
for arg in "$@"; do
  case "$arg" in
    --install-only) install_only=1 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }

# Ends the run before any test: the reason on stderr, then the closing line CI reads.
fail_setup() {
  for line in "$@"; do echo "test.sh: $line" >&2; done
  echo "0 passed, 1 failed"
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else echo "test.sh: need root to run: $*" >&2; return 1
  fi
}

# ----------------------------------------------------------------------------- system packages
# No `cmd | grep -q` here: under pipefail grep -q exits at its first match, the writer dies of SIGPIPE (141) and the
# pipeline counts as failed, so an installed or installable package looked absent. Output is captured, then matched.

# Whether a Debian package is installed.
pkg_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
  [[ "$status" == *"ok installed"* ]]
}

# Whether apt can install a package (it has a candidate version).
pkg_installable() {
  local policy
  policy="$(apt-cache policy "$1" 2>/dev/null)" || return 1
  [[ "$policy" =~ Candidate:\ [^\(] ]]
}

# The Python drivers run under Debian's /usr/bin/python3: python3-kafka and python3-confluent-kafka
# import only there (not under a pyenv python3 that may come first on PATH).
py_has() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

# Sets `missing` to the Debian packages providing each requirement that is not met.
check_requirements() {
  missing=()
  command -v kcat >/dev/null 2>&1 || missing+=(kcat)
  [ -x /usr/bin/python3 ] || missing+=(python3)
  py_has kafka || missing+=(python3-kafka)
  py_has confluent_kafka || missing+=(python3-confluent-kafka)
  py_has snappy || missing+=(python3-snappy)        # kafka-python snappy codec
  py_has lz4.frame || missing+=(python3-lz4)        # kafka-python lz4 codec
  py_has zstandard || missing+=(python3-zstandard)  # kafka-python zstd codec
  local p
  for p in librdkafka-dev postgresql ${TEST_SH_EXTRA_PACKAGES:-}; do
    pkg_installed "$p" || missing+=("$p")
  done
  # Headless Chromium for the admin dashboard test (driven over the DevTools protocol; no browser download).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v curl >/dev/null 2>&1 || missing+=(curl)   # the README examples' admin API calls
  command -v cc >/dev/null 2>&1 || missing+=(gcc)      # builds the crash test's power-loss shim (LD_PRELOAD)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)   # promtool checks the broker's /metrics text
  return 0
}

# Why a package is needed when its name does not say it (for the message when it is missing).
needed_for() { case "$1" in prometheus) echo " (promtool, which checks /metrics)" ;; gcc) echo " (cc, which builds the power-loss shim)" ;; *) echo "" ;; esac; }

check_requirements
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  as_root apt-get update -qq || echo "test.sh: apt-get update failed; trying the package lists already here" >&2
  installable=()
  no_candidate=()
  for p in "${missing[@]}"; do
    if pkg_installable "$p"; then installable+=("$p"); else no_candidate+=("$p"); fi
  done
  if [ "${#installable[@]}" -gt 0 ]; then
    as_root apt-get install -y -qq --no-install-recommends "${installable[@]}" </dev/null \
      || echo "test.sh: apt-get install ${installable[*]} failed" >&2
  fi
  check_requirements
  if [ "${#missing[@]}" -gt 0 ]; then
    problems=()
    for p in "${missing[@]}"; do
      if [[ " ${no_candidate[*]} " == *" $p "* ]]; then
        problems+=("required package '$p'$(needed_for "$p") is not installed and apt has no candidate for it (check /etc/apt/sources.list)")
      else
        problems+=("required package '$p'$(needed_for "$p") is still missing after apt-get install")
      fi
    done
    fail_setup "${problems[@]}"
  fi
fi

# ----------------------------------------------------------------------------- node packages
NODE_DIR="$ROOT/tests/Cairn.Interop.Tests/drivers/node"
node_packages_present() { [ -d "$NODE_DIR/node_modules/kafkajs" ] && [ -d "$NODE_DIR/node_modules/kafkajs-snappy" ]; }
if ! node_packages_present; then
  say "npm ci in $NODE_DIR"
  (cd "$NODE_DIR" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; }) </dev/null \
    || echo "test.sh: npm ci failed in $NODE_DIR" >&2
  node_packages_present || fail_setup "the kafkajs driver's node packages (kafkajs, kafkajs-snappy) are missing in $NODE_DIR after npm ci"
fi

if [ "$install_only" -eq 1 ]; then
  echo "test.sh: every required package and client is installed"
  exit 0
fi

# ----------------------------------------------------------------------------- build
say "dotnet build Cairn.slnx -c Release"
dotnet build Cairn.slnx -c Release -nologo -clp:ErrorsOnly </dev/null || fail_setup "build failed"

# ----------------------------------------------------------------------------- tests
RESULTS="$ROOT/TestResults"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

passed=0
failed=0
skipped=0
status=0
failed_names=""

run_tests() {
  local project="$1"; shift
  local name
  name="$(basename "$project")"
  if [ ! -d "$ROOT/$project" ]; then
    echo "test.sh: $project not found" >&2
    failed=$((failed + 1))
    status=1
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
  counters="$(grep -o -m1 '<Counters [^>]*>' "$trx")" || counters=""
  attr() { printf '%s' "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  local p f e t a n
  p="$(attr passed)"; f="$(attr failed)"; e="$(attr error)"; t="$(attr timeout)"; a="$(attr aborted)"; n="$(attr notExecuted)"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
  skipped=$((skipped + ${n:-0}))
  echo "test.sh: $name: passed ${p:-0}, failed $(( ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0} )), skipped ${n:-0} (dotnet test exit code $rc)"
  if [ "$rc" -ne 0 ]; then status=1; fi
  # Name what failed once more at the end of the output: CI shows only the tail of a long log.
  local names
  names="$(grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$trx" \
    | sed -n 's/.* testName="\([^"]*\)".*/\1/p')" || names=""
  if [ -n "$names" ]; then failed_names+="$(printf '%s\n' "$names" | sed "s/^/  $name: /")"$'\n'; fi
}

run_tests tests/Cairn.Tests
# Interop tests start brokers and client processes; a hung test host is cut off after 10 minutes.
run_tests tests/Cairn.Interop.Tests --blame-hang --blame-hang-timeout 10m --blame-hang-dump-type none

if [ "$failed" -gt 0 ]; then status=1; fi

echo
if [ -n "$failed_names" ]; then
  echo "test.sh: failed tests:"
  printf '%s' "$failed_names"
fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
exit "$status"
