"""Shared helpers for the Python interop drivers.

Wire format shared with the C# tests (one JSON object per line on stdout):
  records input file (producers): {"partition": int|null, "key": hex|null, "value": hex|null,
                                   "headers": [[name, hex|null], ...], "timestamp": ms|null}
  produce output:  {"i": index, "partition": p, "offset": o}   or {"i": index, "error": "..."}
  consume output:  {"partition": p, "offset": o, "timestamp": ms, "key": hex|null,
                    "value": hex|null, "headers": [[name, hex|null], ...]}
  control lines:   {"event": "ready"|"done"|"timeout", ...}
  group members (group-consume), one topic, values are text:
                   {"event": "assigned"|"revoked"|"lost", "partitions": [p...], "owned": [p...]}
                   {"event": "record", "partition": p, "offset": o, "value": text}
                   {"event": "committed", "offsets": {"p": next-offset, ...}}
                   {"event": "commit-failed", "error": "..."}
                   {"event": "closed"} once a member stopped cleanly (SIGTERM) and left/committed
Bytes are hex-encoded; null (JSON null) is distinct from empty ("").
Diagnostics go to stderr only.
"""
import json
import sys
import time


def hexd(b):
    if b is None:
        return None
    if isinstance(b, str):
        b = b.encode("utf-8")
    return bytes(b).hex()


def unhex(s):
    return None if s is None else bytes.fromhex(s)


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def read_records(path):
    out = []
    with open(path, "r", encoding="utf-8-sig") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def parse_start(spec):
    """earliest | latest | offset:N | timestamp:MS"""
    if spec in ("earliest", "latest"):
        return spec, None
    kind, _, val = spec.partition(":")
    if kind in ("offset", "timestamp") and val:
        return kind, int(val)
    raise SystemExit("bad --start " + spec)


def parse_partitions(spec):
    """'all' or a comma separated list of partition ids"""
    if spec in (None, "", "all"):
        return None
    return [int(p) for p in spec.split(",")]


def parse_configs(items):
    cfg = {}
    for item in items or []:
        k, _, v = item.partition("=")
        cfg[k] = v
    return cfg


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def add_common_args(parser):
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--timeout", type=float, default=45.0,
                        help="overall bound for the operation, seconds")


def text(b):
    return None if b is None else bytes(b).decode("utf-8", "replace")


class StopFlag:
    """Set by SIGTERM/SIGINT: a group member then commits, closes (leaves) and exits 0."""

    def __init__(self):
        import signal
        self.set = False
        signal.signal(signal.SIGTERM, self._on)
        signal.signal(signal.SIGINT, self._on)

    def _on(self, *_):
        self.set = True


def parse_offsets(spec):
    """'0:10,1:20' -> {0: 10, 1: 20}"""
    out = {}
    for item in (spec or "").split(","):
        if item:
            p, _, o = item.partition(":")
            out[int(p)] = int(o)
    return out
