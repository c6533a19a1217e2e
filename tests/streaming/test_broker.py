from __future__ import annotations

import socket

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streaming.broker import BrokerConfig, EmbeddedBroker
from streaming.errors import BrokerError
from streaming.topics import create_topics

pytestmark = pytest.mark.broker


def test_broker_round_trip_and_topic_partitions(broker):
    create_topics(broker.bootstrap, {"t": 3})
    create_topics(broker.bootstrap, {"t": 3})  # idempotent
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(30):
        producer.send("t", key=str(i).encode(), value=b"v%d" % i)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=3000)
    assert consumer.partitions_for_topic("t") == {0, 1, 2}
    consumer.assign([TopicPartition("t", p) for p in range(3)])
    consumer.seek_to_beginning()
    assert sorted(m.value for m in consumer) == sorted(b"v%d" % i for i in range(30))
    consumer.close()


def test_stop_by_pid_frees_the_port():
    broker = EmbeddedBroker().start()
    pid = broker.process.pid
    broker.stop()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", broker.port))


def test_port_in_use_gives_clear_error():
    with EmbeddedBroker() as first, pytest.raises(BrokerError, match="in use"):
        EmbeddedBroker(BrokerConfig(port=first.port, start_timeout_s=2)).start()


def test_create_topics_on_a_dead_broker_fails_fast():
    import time

    from streaming.broker import free_port

    start = time.monotonic()
    with pytest.raises(BrokerError, match="cannot reach"):
        create_topics(f"127.0.0.1:{free_port()}", {"t": 1})
    assert time.monotonic() - start < 15
