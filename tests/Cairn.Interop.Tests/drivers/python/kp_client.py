#!/usr/bin/python3
"""kafka-python driver for the Cairn interop tests.

Run with /usr/bin/python3 (Debian's python3-kafka, 2.0.x). Same command line and JSON-lines
protocol as ck_client.py (see common.py).

Known kafka-python 2.0.2 quirks the tests account for:
  * send() refuses a record whose key and value are both None.
  * a header whose value is None is written as an EMPTY value (length 0), not as null.
  * the plain consume/offsets commands never use a group (group_id=None and assign()); the
    group-* commands below do. kafka-python 2.0 has no static membership (group.instance.id).
"""
import argparse
import logging
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata
from kafka.admin import (ConfigResource, ConfigResourceType, KafkaAdminClient,
                         NewPartitions, NewTopic)
from kafka.errors import for_code

import common
from common import Deadline, emit, hexd, log, unhex

CLIENT_ID = "cairn-interop-kafka-python"

logging.basicConfig(stream=sys.stderr, level=logging.WARNING)


def base_conf(args):
    return {
        "bootstrap_servers": args.bootstrap,
        "client_id": CLIENT_ID,
        "request_timeout_ms": 30000,
        "api_version_auto_timeout_ms": 10000,
    }


def codec_arg(codec):
    return None if codec in (None, "", "none") else codec


# ---------------------------------------------------------------- produce

def cmd_produce(args):
    records = common.read_records(args.input)
    conf = base_conf(args)
    conf.update({
        "compression_type": codec_arg(args.codec),
        "acks": "all" if args.acks in ("all", "-1") else int(args.acks),
        "linger_ms": 5,
        "max_block_ms": int(args.timeout * 1000),
    })
    p = KafkaProducer(**conf)
    futures = []
    for i, r in enumerate(records):
        key, value = unhex(r.get("key")), unhex(r.get("value"))
        if key is None and value is None:
            futures.append((i, None, "kafka-python cannot send a record with null key and null value"))
            continue
        headers = [(h[0], unhex(h[1])) for h in (r.get("headers") or [])]
        f = p.send(args.topic, value=value, key=key, headers=headers,
                   partition=r.get("partition"), timestamp_ms=r.get("timestamp"))
        futures.append((i, f, None))
    p.flush(timeout=args.timeout)
    failed = 0
    for i, f, err in futures:
        if f is None:
            emit({"i": i, "error": err})
            failed += 1
            continue
        try:
            md = f.get(timeout=1)
            emit({"i": i, "partition": md.partition, "offset": md.offset})
        except Exception as e:  # noqa: BLE001 - report any failure per record
            emit({"i": i, "error": repr(e)})
            failed += 1
    p.close(timeout=5)
    emit({"event": "done", "acked": len(records) - failed, "failed": failed})
    return 0 if failed == 0 else 1


# ---------------------------------------------------------------- consume

def make_consumer(args):
    conf = base_conf(args)
    conf.update({
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 200,
    })
    return KafkaConsumer(**conf)


def topic_partitions(consumer, topic, wanted):
    if wanted is not None:
        return wanted
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise SystemExit("topic %s not in metadata" % topic)
    return sorted(parts)


def cmd_consume(args):
    deadline = Deadline(args.timeout)
    c = make_consumer(args)
    kind, val = common.parse_start(args.start)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions))
    tps = [TopicPartition(args.topic, p) for p in parts]
    c.assign(tps)
    if kind == "earliest":
        c.seek_to_beginning(*tps)
    elif kind == "latest":
        c.seek_to_end(*tps)
    elif kind == "offset":
        for tp in tps:
            c.seek(tp, val)
    else:
        found = c.offsets_for_times({tp: val for tp in tps})
        for tp in tps:
            ot = found.get(tp)
            if ot is None:
                c.seek_to_end(tp)
            else:
                c.seek(tp, ot.offset)
    # position() blocks until the start offset is resolved (ListOffsets for earliest/latest)
    positions = {tp.partition: c.position(tp) for tp in tps}
    emit({"event": "ready", "partitions": parts, "positions": positions})
    n = 0
    while n < args.count and not deadline.expired():
        batch = c.poll(timeout_ms=int(min(500, max(50, deadline.left() * 1000))))
        for tp, msgs in batch.items():
            for m in msgs:
                emit({
                    "partition": m.partition,
                    "offset": m.offset,
                    "timestamp": m.timestamp,
                    "tstype": m.timestamp_type,
                    "key": hexd(m.key),
                    "value": hexd(m.value),
                    "headers": [[k, hexd(v)] for k, v in (m.headers or [])],
                })
                n += 1
    emit({"event": "done" if n >= args.count else "timeout", "count": n})
    c.close(autocommit=False)
    return 0


# ---------------------------------------------------------------- offsets

def cmd_offsets(args):
    c = make_consumer(args)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions))
    tps = [TopicPartition(args.topic, p) for p in parts]
    low = c.beginning_offsets(tps)
    high = c.end_offsets(tps)
    emit({"partitions": [{"partition": tp.partition, "low": low[tp], "high": high[tp]} for tp in tps]})
    c.close(autocommit=False)


def cmd_offsets_for_time(args):
    c = make_consumer(args)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions))
    tps = [TopicPartition(args.topic, p) for p in parts]
    found = c.offsets_for_times({tp: args.timestamp for tp in tps})
    res = []
    for tp in tps:
        ot = found.get(tp)
        res.append({"partition": tp.partition, "offset": -1 if ot is None else ot.offset,
                    "timestamp": None if ot is None else ot.timestamp})
    emit({"partitions": res})
    c.close(autocommit=False)


# ---------------------------------------------------------------- admin

def admin(args):
    return KafkaAdminClient(**base_conf(args))


def check_topic_errors(what, errors):
    """errors: iterable of tuples starting with (topic, error_code, ...)"""
    for e in errors:
        topic, code = e[0], e[1]
        if code != 0:
            msg = e[2] if len(e) > 2 else ""
            raise SystemExit("%s %s failed: %s %s" % (what, topic, for_code(code).__name__, msg))


def cmd_create_topic(args):
    a = admin(args)
    nt = NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1,
                  topic_configs=common.parse_configs(args.config))
    resp = a.create_topics([nt], timeout_ms=15000)
    check_topic_errors("create_topics", resp.topic_errors)
    emit({"ok": True, "version": resp.API_VERSION})


def cmd_create_partitions(args):
    a = admin(args)
    resp = a.create_partitions({args.topic: NewPartitions(total_count=args.count)}, timeout_ms=15000)
    check_topic_errors("create_partitions", resp.topic_errors)
    emit({"ok": True, "version": resp.API_VERSION})


def cmd_delete_topic(args):
    a = admin(args)
    resp = a.delete_topics([args.topic], timeout_ms=15000)
    check_topic_errors("delete_topics", resp.topic_error_codes)
    emit({"ok": True, "version": resp.API_VERSION})


def cmd_list_topics(args):
    emit({"topics": sorted(admin(args).list_topics())})


def cmd_describe_topic(args):
    a = admin(args)
    topics = a.describe_topics([args.topic])
    t = next((x for x in topics if x["topic"] == args.topic), None)
    if t is None or t["error_code"] != 0:
        emit({"name": args.topic, "exists": False,
              "error": None if t is None else for_code(t["error_code"]).__name__})
        return 0
    parts = [{"partition": p["partition"], "leader": p["leader"], "replicas": p["replicas"], "isr": p["isr"]}
             for p in sorted(t["partitions"], key=lambda x: x["partition"])]
    configs = {}
    for resp in a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, args.topic)]):
        for res in resp.resources:
            err, err_msg, _rtype, _rname, entries = res[0], res[1], res[2], res[3], res[4]
            if err != 0:
                raise SystemExit("describe_configs failed: %s %s" % (for_code(err).__name__, err_msg))
            for entry in entries:
                configs[entry[0]] = entry[1]
    emit({"name": args.topic, "exists": True, "partitions": parts, "configs": configs})


def cmd_cluster(args):
    d = admin(args).describe_cluster()
    emit({
        "cluster_id": d.get("cluster_id"),
        "controller": d.get("controller_id"),
        "brokers": [{"id": b["node_id"], "host": b["host"], "port": b["port"]} for b in d["brokers"]],
    })


# ---------------------------------------------------------------- groups

def cmd_group_consume(args):
    """A member of a consumer group on one topic, running until SIGTERM (see common.py).

    --commit auto: enable_auto_commit=True (auto_commit_interval_ms 500; kafka-python also
    commits before a rebalance and on close). --commit manual: after every poll() batch,
    commit({tp: OffsetAndMetadata(next, "<metadata>:<partition>:<next>")}) synchronously.
    On SIGTERM: close() (commits when auto, leaves the group), print {"event":"closed"}.
    """
    stop = common.StopFlag()
    deadline = Deadline(args.timeout)
    conf = base_conf(args)
    conf.update({
        "client_id": args.client_id or CLIENT_ID,
        "group_id": args.group,
        "enable_auto_commit": args.commit == "auto",
        "auto_commit_interval_ms": 500,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": args.session_timeout,
        "heartbeat_interval_ms": args.heartbeat,
        "max_poll_interval_ms": args.max_poll,
        "fetch_max_wait_ms": 100,
    })
    c = KafkaConsumer(**conf)
    owned = set()

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            ps = sorted(tp.partition for tp in revoked)
            owned.difference_update(ps)
            emit({"event": "revoked", "partitions": ps, "owned": sorted(owned)})

        def on_partitions_assigned(self, assigned):
            ps = sorted(tp.partition for tp in assigned)
            owned.clear()
            owned.update(ps)
            emit({"event": "assigned", "partitions": ps, "owned": sorted(owned)})

    c.subscribe([args.topic], listener=Listener())
    emit({"event": "subscribed"})
    while not stop.set and not deadline.expired():
        batch = c.poll(timeout_ms=200)
        done = {}
        for tp, msgs in batch.items():
            for m in msgs:
                emit({"event": "record", "partition": m.partition, "offset": m.offset, "value": common.text(m.value)})
                done[tp] = m.offset + 1
        if done and args.commit == "manual":
            offsets = {tp: OffsetAndMetadata(o, "%s:%d:%d" % (args.metadata, tp.partition, o)) for tp, o in done.items()}
            try:
                c.commit(offsets)
                emit({"event": "committed", "offsets": {str(tp.partition): o for tp, o in done.items()}})
            except Exception as e:  # noqa: BLE001 - reported, the test decides
                emit({"event": "commit-failed", "error": repr(e)})
    if not stop.set:
        emit({"event": "timeout"})
    c.close(autocommit=args.commit == "auto")
    emit({"event": "closed"})
    return 0


def group_consumer(args):
    conf = base_conf(args)
    conf.update({"group_id": args.group, "enable_auto_commit": False})
    return KafkaConsumer(**conf)


def cmd_commit(args):
    """KafkaConsumer.commit({tp: OffsetAndMetadata(offset, metadata)}) without joining the group."""
    c = group_consumer(args)
    offsets = {TopicPartition(args.topic, p): OffsetAndMetadata(o, args.metadata)
               for p, o in sorted(common.parse_offsets(args.offsets).items())}
    c.commit(offsets)
    emit({"ok": True})
    c.close(autocommit=False)


def cmd_committed(args):
    """KafkaConsumer.committed(tp, metadata=True) for each partition (None: nothing committed)."""
    c = group_consumer(args)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions))
    res = []
    for p in parts:
        om = c.committed(TopicPartition(args.topic, p), metadata=True)
        res.append({"partition": p, "offset": None if om is None else om.offset,
                    "metadata": None if om is None else om.metadata})
    emit({"partitions": res})
    c.close(autocommit=False)


def cmd_group_offsets(args):
    """KafkaAdminClient.list_consumer_group_offsets (all partitions the group committed)."""
    partitions = None
    if args.topic and args.partitions:
        partitions = [TopicPartition(args.topic, p) for p in common.parse_partitions(args.partitions)]
    offs = admin(args).list_consumer_group_offsets(args.group, partitions=partitions)
    emit({"offsets": sorted(({"topic": tp.topic, "partition": tp.partition, "offset": om.offset, "metadata": om.metadata}
                             for tp, om in offs.items()), key=lambda x: (x["topic"], x["partition"]))})


def cmd_list_groups(args):
    emit({"groups": sorted(([g[0], g[1]] for g in admin(args).list_consumer_groups()), key=lambda g: g[0])})


def cmd_describe_groups(args):
    out = []
    for g in admin(args).describe_consumer_groups(args.group):
        members = []
        for m in g.members:
            assignment = m.member_assignment
            parts = []
            if assignment is not None and hasattr(assignment, "assignment"):
                for topic, ps in assignment.assignment:
                    parts.extend([topic, p] for p in ps)
            members.append({"member_id": m.member_id, "client_id": m.client_id, "client_host": m.client_host,
                            "assignment": sorted(parts)})
        out.append({"group": g.group, "error_code": g.error_code, "state": g.state,
                    "protocol_type": g.protocol_type, "protocol": g.protocol, "members": members})
    emit({"groups": out})


def cmd_delete_groups(args):
    res = admin(args).delete_consumer_groups(args.group)
    emit({"results": [{"group": g, "error": err.__name__, "error_code": err.errno} for g, err in res]})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, fn):
        sp = sub.add_parser(name)
        common.add_common_args(sp)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("produce", cmd_produce)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--input", required=True)
    sp.add_argument("--codec", default="none")
    sp.add_argument("--acks", default="all")
    sp.add_argument("--idempotent", action="store_true", help="ignored: kafka-python 2.0 has none")

    sp = add("consume", cmd_consume)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--partitions", default="all")
    sp.add_argument("--start", default="earliest")
    sp.add_argument("--count", type=int, required=True)
    sp.add_argument("--warmup", type=float, default=0.0, help="unused: position() resolves synchronously")

    for name, fn in (("offsets", cmd_offsets), ("offsets-for-time", cmd_offsets_for_time)):
        sp = add(name, fn)
        sp.add_argument("--topic", required=True)
        sp.add_argument("--partitions", default="all")
        if name == "offsets-for-time":
            sp.add_argument("--timestamp", type=int, required=True)

    sp = add("create-topic", cmd_create_topic)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--partitions", type=int, default=1)
    sp.add_argument("--config", action="append")

    sp = add("create-partitions", cmd_create_partitions)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--count", type=int, required=True)

    sp = add("delete-topic", cmd_delete_topic)
    sp.add_argument("--topic", required=True)

    add("list-topics", cmd_list_topics)
    sp = add("describe-topic", cmd_describe_topic)
    sp.add_argument("--topic", required=True)
    add("cluster", cmd_cluster)

    sp = add("group-consume", cmd_group_consume)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--group", required=True)
    sp.add_argument("--commit", choices=["manual", "auto"], default="auto")
    sp.add_argument("--metadata", default="kp", help="manual commits: metadata prefix")
    sp.add_argument("--client-id", default=None)
    sp.add_argument("--session-timeout", type=int, default=6000)
    sp.add_argument("--heartbeat", type=int, default=500)
    sp.add_argument("--max-poll", type=int, default=20000)

    sp = add("commit", cmd_commit)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--group", required=True)
    sp.add_argument("--offsets", required=True, help="p:o,p:o")
    sp.add_argument("--metadata", default="")

    sp = add("committed", cmd_committed)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--group", required=True)
    sp.add_argument("--partitions", default="all")

    sp = add("group-offsets", cmd_group_offsets)
    sp.add_argument("--group", required=True)
    sp.add_argument("--topic", default=None)
    sp.add_argument("--partitions", default=None)

    add("list-groups", cmd_list_groups)
    for name, fn in (("describe-groups", cmd_describe_groups), ("delete-groups", cmd_delete_groups)):
        sp = add(name, fn)
        sp.add_argument("--group", action="append", required=True)

    args = ap.parse_args()
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
