#!/usr/bin/env bash
# Stand-in for Kafka's kafka-topics.sh
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx256M}"
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
