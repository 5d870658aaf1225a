#!/usr/bin/env bash
# Re-captures the seed corpus: starts a Cairn broker that advertises a recording proxy (proxy.py), points kcat,
# kafka-python, confluent-kafka and (when its node_modules are installed) kafkajs at it, then turns the recorded request
# frames into fuzz/corpus/request (a few frames per client, API and version) and the record batches of their Produce
# requests into fuzz/corpus/records.
# Needs: apt-get install kcat python3-kafka python3-confluent-kafka; optionally npm ci in tests/Cairn.Interop.Tests/drivers/node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/cairn-capture-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
broker_port=$(free_port)
proxy_port=$(free_port)
bootstrap=127.0.0.1:$proxy_port

dotnet build "$repo/src/Cairn.Cli" -c Release -nologo -clp:ErrorsOnly
dotnet build "$here/../Cairn.Fuzz" -c Release -nologo -clp:ErrorsOnly
mkdir -p "$work/data"
dotnet "$repo/src/Cairn.Cli/bin/Release/net10.0/cairn.dll" serve --listen "127.0.0.1:$broker_port" --advertised-host 127.0.0.1 \
  --data-dir "$work/data" --admin-listen none --set "advertised.port=$proxy_port" > "$work/broker.log" 2>&1 &
pids+=($!)
python3 "$here/proxy.py" "$proxy_port" "$broker_port" "$work/frames" &
pids+=($!)
for port in "$broker_port" "$proxy_port"; do
  for _ in $(seq 1 150); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
done

run() { echo "== $*"; timeout 120 "$@" || echo "   (failed: $?; its frames are still kept)"; }

# kcat (librdkafka): metadata, produce with each codec, consume, a balanced consumer group.
for codec in none gzip snappy lz4 zstd; do
  seq 1 20 | sed 's/^/kcat-'"$codec"'-/' | run kcat -b "$bootstrap" -P -t kcat-seed -z "$codec" -X client.id=capture-kcat -H h=x -K :
done
run kcat -b "$bootstrap" -L -X client.id=capture-kcat
run kcat -b "$bootstrap" -C -t kcat-seed -o beginning -e -q -X client.id=capture-kcat > /dev/null
run kcat -b "$bootstrap" -G kcat-group -o beginning -e -q -X client.id=capture-kcat -X enable.auto.commit=true kcat-seed > /dev/null
run /usr/bin/python3 "$here/clients.py" "$bootstrap" kafka-python
run /usr/bin/python3 "$here/clients.py" "$bootstrap" confluent-kafka
if [ -d "$repo/tests/Cairn.Interop.Tests/drivers/node/node_modules/kafkajs" ]; then
  run node "$here/kafkajs.js" "$bootstrap"
else
  echo "== kafkajs skipped (npm ci in tests/Cairn.Interop.Tests/drivers/node to include it)"
fi
sleep 1

rm -rf "$here/../corpus/request" "$here/../corpus/records"
dotnet "$here/../Cairn.Fuzz/bin/Release/net10.0/Cairn.Fuzz.dll" seeds "$work/frames" "$here/../corpus"
