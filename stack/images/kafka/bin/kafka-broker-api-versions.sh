#!/usr/bin/env bash
# Stand-in for Kafka's kafka-broker-api-versions.sh
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx256M}"
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
