#!/usr/bin/python3
"""confluent-kafka (librdkafka) driver for the Cairn interop tests.

Run with /usr/bin/python3 (Debian's python3-confluent-kafka). See common.py for the
JSON-lines protocol spoken on stdout.
"""
import argparse
import json
import os
import sys
import time

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition, OFFSET_BEGINNING, OFFSET_END)
from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions,
                                   NewTopic)

import common
from common import Deadline, emit, hexd, log, unhex

CLIENT_ID = "cairn-interop-confluent"


def base_conf(args):
    return {
        "bootstrap.servers": args.bootstrap,
        "client.id": CLIENT_ID,
        "socket.timeout.ms": 10000,
        "error_cb": lambda err: log("librdkafka error:", err),
    }


# ---------------------------------------------------------------- produce

def cmd_produce(args):
    records = common.read_records(args.input)
    conf = base_conf(args)
    conf.update({
        "compression.type": args.codec,
        "acks": args.acks,
        "linger.ms": 5,
        "enable.idempotence": args.idempotent,
        "message.timeout.ms": int(args.timeout * 1000),
    })
    p = Producer(conf)
    results = {}

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                results[i] = {"i": i, "error": str(err)}
            else:
                results[i] = {"i": i, "partition": msg.partition(), "offset": msg.offset()}
        return cb

    deadline = Deadline(args.timeout)
    for i, r in enumerate(records):
        kwargs = {
            "key": unhex(r.get("key")),
            "value": unhex(r.get("value")),
            "on_delivery": on_delivery(i),
        }
        if r.get("partition") is not None:
            kwargs["partition"] = r["partition"]
        if r.get("headers"):
            kwargs["headers"] = [(h[0], unhex(h[1])) for h in r["headers"]]
        if r.get("timestamp") is not None:
            kwargs["timestamp"] = r["timestamp"]
        while True:
            try:
                p.produce(args.topic, **kwargs)
                break
            except BufferError:
                if deadline.expired():
                    raise SystemExit("produce queue stayed full")
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(deadline.left())
    failed = 0
    for i in range(len(records)):
        res = results.get(i) or {"i": i, "error": "no delivery report (flush timed out)"}
        if "error" in res:
            failed += 1
        emit(res)
    emit({"event": "done", "acked": len(records) - failed, "failed": failed, "unflushed": remaining})
    return 0 if failed == 0 else 1


def cmd_crash_produce(args):
    """Produce a bounded stream with acks=all and report every acknowledgement at once.

    Prints {"o": offset, "v": value-text} per acknowledged record, flushed per line, so a
    reader sees each ack as soon as the delivery callback ran. Stops after --max records
    or --max-seconds, or when stdin closes if --stop-on-stdin-eof.
    """
    conf = base_conf(args)
    conf.update({
        "acks": "all",
        "linger.ms": 2,
        "batch.num.messages": 200,
        "message.timeout.ms": int(args.max_seconds * 1000) + 5000,
        "queue.buffering.max.messages": 2000,
    })
    p = Producer(conf)
    out = sys.stdout

    def cb(err, msg):
        if err is None:
            out.write('{"o":%d,"v":"%s"}\n' % (msg.offset(), msg.value().decode("ascii")))
            out.flush()

    deadline = Deadline(args.max_seconds)
    pad = "x" * args.pad
    start = time.monotonic()
    n = 0
    while n < args.max and not deadline.expired():
        if args.rate > 0 and n >= args.rate * (time.monotonic() - start):
            p.poll(0.002)  # throttle to --rate records per second
            continue
        v = "crash-%08d-%s" % (n, pad)
        try:
            p.produce(args.topic, value=v.encode("ascii"), partition=args.partition, on_delivery=cb)
            n += 1
        except BufferError:
            p.poll(0.01)
            continue
        p.poll(0)
    p.flush(min(10.0, deadline.left() + 5.0))
    emit({"event": "done", "produced": n})
    return 0


def cmd_idem_produce(args):
    """Idempotent producer (enable.idempotence, acks=all) for the crash-consistency test.

    Produces numbered records with unique payloads "idem-<n>-<pad>" round-robin to --partitions
    partitions until --max records, --max-seconds, or stdin closes; then flushes (bounded by
    --flush-seconds). Every delivery report is printed the moment it arrives, flushed per line:
      {"id": n, "p": partition, "o": offset}             acknowledged
      {"id": n, "p": partition, "err": "NAME", "fatal": bool}  failed (may still be in the log)
    librdkafka's error callback (connection loss, producer-id trouble) becomes
      {"event": "error", "err": "NAME", "fatal": bool, "msg": "..."}
    and the end {"event": "done", "produced": n, "unreported": k}.
    """
    import threading
    conf = base_conf(args)
    conf.update({
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 100,
        "message.timeout.ms": int(args.message_timeout * 1000),
        "queue.buffering.max.messages": 5000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "error_cb": lambda err: emit({"event": "error", "err": err.name(), "fatal": err.fatal(), "msg": err.str()}),
    })
    p = Producer(conf)
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()  # returns at EOF: the test closed our input
        stop.set()
    threading.Thread(target=watch_stdin, daemon=True).start()

    def cb(err, msg):
        n = int(msg.value()[5:13])
        if err is None:
            out = '{"id":%d,"p":%d,"o":%d}\n' % (n, msg.partition(), msg.offset())
        else:
            out = '{"id":%d,"p":%d,"err":"%s","fatal":%s}\n' % (
                n, msg.partition(), err.name(), "true" if err.fatal() else "false")
        sys.stdout.write(out)
        sys.stdout.flush()

    deadline = Deadline(args.max_seconds)
    pad = "x" * args.pad
    start = time.monotonic()
    n = 0
    while n < args.max and not deadline.expired() and not stop.is_set():
        if args.rate > 0 and n >= args.rate * (time.monotonic() - start):
            p.poll(0.002)  # throttle to --rate records per second
            continue
        v = "idem-%08d-%s" % (n, pad)
        try:
            p.produce(args.topic, value=v.encode("ascii"), partition=n % args.partitions, on_delivery=cb)
            n += 1
        except BufferError:
            p.poll(0.01)
            continue
        p.poll(0)
    unreported = p.flush(args.flush_seconds)
    emit({"event": "done", "produced": n, "unreported": unreported})
    sys.stdout.flush()
    os._exit(0)  # do not wait for in-flight requests to a dead broker in the destructor


# ---------------------------------------------------------------- consume

def make_consumer(args, stats_cb=None):
    conf = base_conf(args)
    if stats_cb is not None:
        conf.update({"statistics.interval.ms": 100, "stats_cb": stats_cb})
    conf.update({
        # group.id is only set because the client insists on one; nothing is committed
        "group.id": "cairn-interop-unused-group",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 200,
    })
    return Consumer(conf)


def topic_partitions(consumer, topic, wanted, timeout):
    if wanted is not None:
        return wanted
    md = consumer.list_topics(topic, timeout=timeout)
    tmd = md.topics.get(topic)
    if tmd is None or tmd.error is not None:
        raise SystemExit("topic %s not in metadata: %s" % (topic, tmd and tmd.error))
    return sorted(tmd.partitions.keys())


def cmd_consume(args):
    deadline = Deadline(args.timeout)
    kind, val = common.parse_start(args.start)
    fetch_states = {}

    def on_stats(js):
        # Per-partition fetcher state from librdkafka statistics: "active" once the logical
        # start offset (OFFSET_END) has been resolved through ListOffsets and fetching began.
        try:
            st = json.loads(js)
            for pid, pst in st.get("topics", {}).get(args.topic, {}).get("partitions", {}).items():
                if int(pid) >= 0:
                    fetch_states[int(pid)] = pst.get("fetch_state")
        except ValueError:
            pass

    c = make_consumer(args, on_stats if kind == "latest" else None)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions), 10)
    if kind == "earliest":
        tps = [TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in parts]
    elif kind == "latest":
        tps = [TopicPartition(args.topic, p, OFFSET_END) for p in parts]
    elif kind == "offset":
        tps = [TopicPartition(args.topic, p, val) for p in parts]
    else:
        found = c.offsets_for_times([TopicPartition(args.topic, p, val) for p in parts], timeout=10)
        tps = []
        for tp in found:
            if tp.error is not None:
                raise SystemExit("offsets_for_times failed: %s" % tp.error)
            tps.append(TopicPartition(args.topic, tp.partition,
                                      tp.offset if tp.offset >= 0 else OFFSET_END))
    c.assign(tps)
    got = []
    if kind == "latest":
        # Report ready only once every partition's fetcher is active, i.e. the end offset is
        # resolved: records produced after that are the ones this consumer must see.
        warm = Deadline(args.warmup)
        while not warm.expired():
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                got.append(m)
            if all(fetch_states.get(p) == "active" for p in parts):
                break
        else:
            log("warning: fetchers not all active after warmup:", fetch_states)
    emit({"event": "ready", "partitions": parts})
    for m in got:
        emit_msg(m)
    n = len(got)
    while n < args.count and not deadline.expired():
        m = c.poll(min(0.5, max(0.05, deadline.left())))
        if m is None:
            continue
        if m.error() is not None:
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            log("consume error:", m.error())
            if m.error().fatal():
                break
            continue
        emit_msg(m)
        n += 1
    emit({"event": "done" if n >= args.count else "timeout", "count": n})
    sys.stdout.flush()
    # Nothing to commit: skip the group-leave dance of close() and exit at once.
    os._exit(0)


def emit_msg(m):
    ts_type, ts = m.timestamp()
    hs = m.headers() or []
    emit({
        "partition": m.partition(),
        "offset": m.offset(),
        "timestamp": ts,
        "tstype": ts_type,
        "key": hexd(m.key()),
        "value": hexd(m.value()),
        "headers": [[k, hexd(v)] for k, v in hs],
    })


# ---------------------------------------------------------------- offsets

def cmd_offsets(args):
    c = make_consumer(args)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions), 10)
    res = []
    for p in parts:
        low, high = c.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10)
        res.append({"partition": p, "low": low, "high": high})
    emit({"partitions": res})
    sys.stdout.flush()
    os._exit(0)


def cmd_offsets_for_time(args):
    c = make_consumer(args)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions), 10)
    found = c.offsets_for_times([TopicPartition(args.topic, p, args.timestamp) for p in parts], timeout=10)
    res = []
    for tp in found:
        if tp.error is not None:
            raise SystemExit("offsets_for_times failed: %s" % tp.error)
        res.append({"partition": tp.partition, "offset": tp.offset})
    emit({"partitions": res})
    sys.stdout.flush()
    os._exit(0)


# ---------------------------------------------------------------- admin

def admin(args):
    return AdminClient(base_conf(args))


def wait_all(futures, timeout):
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as e:
            raise SystemExit("%s failed: %s" % (name, e))


def cmd_create_topic(args):
    a = admin(args)
    nt = NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1,
                  config=common.parse_configs(args.config))
    wait_all(a.create_topics([nt], operation_timeout=10, request_timeout=15), 20)
    emit({"ok": True})


def cmd_create_partitions(args):
    a = admin(args)
    wait_all(a.create_partitions([NewPartitions(args.topic, args.count)],
                                 operation_timeout=10, request_timeout=15), 20)
    emit({"ok": True})


def cmd_delete_topic(args):
    a = admin(args)
    wait_all(a.delete_topics([args.topic], operation_timeout=10, request_timeout=15), 20)
    emit({"ok": True})


def cmd_list_topics(args):
    md = admin(args).list_topics(timeout=10)
    emit({"topics": sorted(t for t in md.topics.keys())})


def cmd_describe_topic(args):
    a = admin(args)
    md = a.list_topics(topic=args.topic, timeout=10)
    t = md.topics.get(args.topic)
    if t is None or t.error is not None:
        emit({"name": args.topic, "exists": False, "error": str(t.error) if t is not None else None})
        return 0
    parts = [{"partition": p.id, "leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs)}
             for p in sorted(t.partitions.values(), key=lambda x: x.id)]
    res = ConfigResource("topic", args.topic)
    configs = {}
    for _, fut in a.describe_configs([res], request_timeout=15).items():
        for name, entry in fut.result(timeout=20).items():
            configs[name] = entry.value
    emit({"name": args.topic, "exists": True, "partitions": parts, "configs": configs})


def cmd_cluster(args):
    md = admin(args).list_topics(timeout=10)
    emit({
        "cluster_id": md.cluster_id,
        "controller": md.controller_id,
        "brokers": [{"id": b.id, "host": b.host, "port": b.port} for b in md.brokers.values()],
    })


# ---------------------------------------------------------------- groups

def cmd_group_consume(args):
    """A member of a consumer group on one topic, running until SIGTERM (see common.py).

    --commit manual: enable.auto.commit=false; after every consumed batch the offsets of the
    processed records are committed synchronously (commit(offsets=..., asynchronous=False)), and
    pending offsets of revoked partitions are committed in the revoke callback, so a clean
    handover re-reads nothing. --commit auto: librdkafka's auto-commit (and its commit on
    revoke/close). On SIGTERM: commit what is pending, close() (leave the group), print
    {"event":"closed"} and exit 0.
    """
    stop = common.StopFlag()
    deadline = Deadline(args.timeout)
    cooperative = args.strategy == "cooperative-sticky"
    conf = base_conf(args)
    conf.update({
        "client.id": args.client_id or CLIENT_ID,
        "group.id": args.group,
        "enable.auto.commit": args.commit == "auto",
        "auto.commit.interval.ms": 500,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_timeout,
        "heartbeat.interval.ms": args.heartbeat,
        "max.poll.interval.ms": args.max_poll,
        "partition.assignment.strategy": args.strategy,
        "fetch.wait.max.ms": 100,
        "enable.partition.eof": False,
    })
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    c = Consumer(conf)
    owned = set()
    processed = {}   # partition -> next offset to commit
    committed = {}   # partition -> last committed next offset

    def commit_pending(parts=None, attempts=1):
        offs = {p: o for p, o in processed.items()
                if (parts is None or p in parts) and committed.get(p) != o}
        if not offs or args.commit != "manual":
            return True
        for attempt in range(attempts):
            try:
                res = c.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in sorted(offs.items())],
                               asynchronous=False)
                errors = [str(tp.error) for tp in (res or []) if tp.error is not None]
                if errors:
                    raise KafkaException(errors[0])
                committed.update(offs)
                emit({"event": "committed", "offsets": {str(p): o for p, o in sorted(offs.items())}})
                return True
            except KafkaException as e:
                emit({"event": "commit-failed", "error": str(e), "offsets": {str(p): o for p, o in offs.items()}})
                if attempt + 1 < attempts:
                    time.sleep(0.2)
        return False

    def on_assign(consumer, partitions):
        ps = sorted(tp.partition for tp in partitions)
        if cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
            owned.clear()
        owned.update(ps)
        emit({"event": "assigned", "partitions": ps, "owned": sorted(owned)})

    def release(consumer, partitions, event):
        ps = sorted(tp.partition for tp in partitions)
        for p in ps:
            processed.pop(p, None)
            committed.pop(p, None)
            owned.discard(p)
        if cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()
        emit({"event": event, "partitions": ps, "owned": sorted(owned)})

    def on_revoke(consumer, partitions):
        # A clean handover commits what was processed first; a lost partition (session expired) cannot.
        commit_pending(set(tp.partition for tp in partitions), attempts=5)
        release(consumer, partitions, "revoked")

    def on_lost(consumer, partitions):
        release(consumer, partitions, "lost")

    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit({"event": "subscribed"})
    while not stop.set and not deadline.expired():
        msgs = c.consume(num_messages=args.batch, timeout=0.2)
        for m in msgs:
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    log("consume error:", m.error())
                continue
            if m.partition() not in owned:
                log("warning: record from partition %d not owned %s" % (m.partition(), sorted(owned)))
            emit({"event": "record", "partition": m.partition(), "offset": m.offset(), "value": common.text(m.value())})
            processed[m.partition()] = m.offset() + 1
            if args.delay_ms > 0:
                time.sleep(args.delay_ms / 1000.0)
        commit_pending()
    if not stop.set:
        emit({"event": "timeout"})
    commit_pending(attempts=5)
    c.close()
    emit({"event": "closed"})
    sys.stdout.flush()
    return 0


def cmd_committed(args):
    """committed() of a group (not joining it) plus get_watermark_offsets for each partition."""
    conf = base_conf(args)
    conf.update({"group.id": args.group, "enable.auto.commit": False})
    c = Consumer(conf)
    parts = topic_partitions(c, args.topic, common.parse_partitions(args.partitions), 10)
    res = []
    for tp in c.committed([TopicPartition(args.topic, p) for p in parts], timeout=15):
        low, high = c.get_watermark_offsets(TopicPartition(args.topic, tp.partition), timeout=10)
        res.append({"partition": tp.partition, "offset": tp.offset,
                    "error": None if tp.error is None else str(tp.error), "low": low, "high": high})
    emit({"partitions": sorted(res, key=lambda r: r["partition"])})
    sys.stdout.flush()
    c.close()
    return 0


def cmd_list_groups(args):
    """AdminClient.list_groups (ListGroups + DescribeGroups in confluent-kafka 1.7)."""
    groups = admin(args).list_groups(timeout=15)
    emit({"groups": sorted(({"id": g.id, "state": g.state, "protocol_type": g.protocol_type,
                              "protocol": g.protocol,
                              "members": sorted(m.client_id for m in g.members)}
                             for g in groups), key=lambda g: g["id"])})


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
    sp.add_argument("--idempotent", action="store_true")

    sp = add("crash-produce", cmd_crash_produce)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--partition", type=int, default=0)
    sp.add_argument("--max", type=int, default=20000)
    sp.add_argument("--max-seconds", type=float, default=20.0)
    sp.add_argument("--pad", type=int, default=64)
    sp.add_argument("--rate", type=int, default=0, help="records per second, 0 = unthrottled")

    sp = add("idem-produce", cmd_idem_produce)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--partitions", type=int, default=1)
    sp.add_argument("--max", type=int, default=100000)
    sp.add_argument("--max-seconds", type=float, default=60.0)
    sp.add_argument("--message-timeout", type=float, default=30.0, help="message.timeout.ms, seconds")
    sp.add_argument("--flush-seconds", type=float, default=20.0)
    sp.add_argument("--pad", type=int, default=64)
    sp.add_argument("--rate", type=int, default=0, help="records per second, 0 = unthrottled")

    sp = add("consume", cmd_consume)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--partitions", default="all")
    sp.add_argument("--start", default="earliest")
    sp.add_argument("--count", type=int, required=True)
    sp.add_argument("--warmup", type=float, default=15.0, help="bound on waiting for the fetchers (latest)")

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
    sp.add_argument("--commit", choices=["manual", "auto"], default="manual")
    sp.add_argument("--strategy", default="range")
    sp.add_argument("--instance-id", default=None)
    sp.add_argument("--client-id", default=None)
    sp.add_argument("--session-timeout", type=int, default=6000)
    sp.add_argument("--heartbeat", type=int, default=500)
    sp.add_argument("--max-poll", type=int, default=20000)
    sp.add_argument("--delay-ms", type=float, default=0.0, help="processing time per record")
    sp.add_argument("--batch", type=int, default=100, help="consume(num_messages=...) per commit")

    sp = add("committed", cmd_committed)
    sp.add_argument("--topic", required=True)
    sp.add_argument("--group", required=True)
    sp.add_argument("--partitions", default="all")

    add("list-groups", cmd_list_groups)

    args = ap.parse_args()
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
