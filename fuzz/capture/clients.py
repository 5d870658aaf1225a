#!/usr/bin/python3
"""Drives kafka-python and confluent-kafka (librdkafka) through the recording proxy at BOOTSTRAP: topic admin, produce
with every codec, consume, a consumer group with commits, offsets by time, configs. Each step is bounded in time."""
import sys
import time
import uuid

bootstrap = sys.argv[1]
which = sys.argv[2:] or ["kafka-python", "confluent-kafka"]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def kafka_python():
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    topic = "kp-" + uuid.uuid4().hex[:6]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="capture-kafka-python")
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.create_partitions({topic: NewPartitions(3)})
    admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "86400000"})])
    for codec in CODECS:
        if codec == "zstd":
            continue  # kafka-python 2.0 cannot produce zstd
        try:
            p = KafkaProducer(bootstrap_servers=bootstrap, client_id="capture-kafka-python",
                              compression_type=None if codec == "none" else codec, linger_ms=5)
        except AssertionError as e:  # e.g. python3-snappy / python3-lz4 not installed
            print(f"kafka-python: {codec} skipped: {e}", file=sys.stderr)
            continue
        for i in range(20):
            p.send(topic, key=b"k%d" % i, value=b"v" * (i * 7), headers=[("h", b"x"), ("e", b"")])
        p.flush(timeout=30)
        p.close()
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="kp-group", client_id="capture-kafka-python",
                      auto_offset_reset="earliest", consumer_timeout_ms=5000)
    n = sum(1 for _ in c)
    c.commit()
    tps = [TopicPartition(topic, p) for p in range(3)]
    c.offsets_for_times({tp: 0 for tp in tps})
    c.end_offsets(tps)
    c.close()
    admin.list_consumer_groups()
    admin.describe_consumer_groups(["kp-group"])
    admin.list_consumer_group_offsets("kp-group")
    admin.delete_topics([topic])
    admin.close()
    print(f"kafka-python: consumed {n}", file=sys.stderr)


def confluent():
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
    topic = "ck-" + uuid.uuid4().hex[:6]
    conf = {"bootstrap.servers": bootstrap, "client.id": "capture-confluent-kafka"}
    admin = AdminClient(conf)
    for f in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        f.result(30)
    for f in admin.create_partitions([NewPartitions(topic, 3)]).values():
        f.result(30)
    for f in admin.describe_configs([ConfigResource("topic", topic)]).values():
        f.result(30)
    for codec in CODECS:
        p = Producer({**conf, "compression.type": codec, "linger.ms": 5, "enable.idempotence": codec == "zstd"})
        for i in range(20):
            p.produce(topic, key=b"k%d" % i, value=b"v" * (i * 7), headers=[("h", b"x"), ("e", b"")])
        p.flush(30)
    c = Consumer({**conf, "group.id": "ck-group", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    n, deadline = 0, time.time() + 20
    while n < 100 and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            n += 1
    if n:
        c.commit(asynchronous=False)
    c.offsets_for_times([TopicPartition(topic, p, 0) for p in range(3)], timeout=10)
    c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    c.close()
    admin.list_groups(timeout=10)
    for f in admin.delete_topics([topic]).values():
        f.result(30)
    print(f"confluent-kafka: consumed {n}", file=sys.stderr)


for name in which:
    {"kafka-python": kafka_python, "confluent-kafka": confluent}[name]()
