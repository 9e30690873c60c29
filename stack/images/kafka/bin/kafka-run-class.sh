#!/usr/bin/env bash
# Stand-in for Kafka's kafka-run-class.sh: runs a class with every jar of /opt/kafka/libs.
set -euo pipefail
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:-} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true} \
  ${KAFKA_OPTS:-} -cp "/opt/kafka/libs/*" "$@"
