#!/usr/bin/env bash
# Stand-in for Kafka's kafka-server-start.sh <server.properties>
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"
exec "$(dirname "$0")/kafka-run-class.sh" kafka.Kafka "$@"
