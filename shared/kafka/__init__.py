"""Kafka edges: the CloudEvents codec, an idempotent publisher and an at-least-once consumer."""

from shared.kafka.codec import CE_HEADERS, decode, encode, header
from shared.kafka.consumer import EventConsumer, Handler
from shared.kafka.dedupe import Dedupe, MemoryDedupe, RedisDedupe
from shared.kafka.publisher import KafkaPublisher, Publisher

__all__ = [
    "CE_HEADERS", "decode", "encode", "header", "EventConsumer", "Handler", "Dedupe", "MemoryDedupe",
    "RedisDedupe", "KafkaPublisher", "Publisher",
]
