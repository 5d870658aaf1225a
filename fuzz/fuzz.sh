#!/usr/bin/env bash
# Builds, instruments and runs one fuzz target under AFL++:  fuzz/fuzz.sh request|records [SECONDS]
# Needs: apt-get install afl++; dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0
# Findings (crashes/, hangs/, queue/) go to fuzz/findings/<target>/ (git-ignored); replay a crash with
#   dotnet fuzz/out/<target>/Cairn.Fuzz.dll <target> fuzz/findings/<target>/default/crashes
set -euo pipefail
target=${1:?usage: fuzz/fuzz.sh request|records [SECONDS]}
seconds=${2:-0}
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out/$target
export PATH="$PATH:$HOME/.dotnet/tools"

rm -rf "$out"
dotnet publish "$here/Cairn.Fuzz" -c Release -o "$out" -nologo -clp:ErrorsOnly
# Only Cairn's own protocol assembly is instrumented: coverage of the BCL and the compression libraries would be noise.
sharpfuzz "$out/Cairn.Protocol.dll"

mkdir -p "$here/findings"
args=(-i "$here/corpus/$target" -o "$here/findings/$target" -t 5000 -m none)
[ "$seconds" -gt 0 ] && args+=(-V "$seconds")
# dotnet itself is not instrumented (SharpFuzz reports coverage from inside the process); AFL_SKIP_BIN_CHECK says so.
AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=${AFL_NO_UI:-} \
  afl-fuzz "${args[@]}" -- dotnet "$out/Cairn.Fuzz.dll" "$target"
