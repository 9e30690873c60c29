#!/usr/bin/env bash
# Entrypoint of the kafka service in docker-compose.yml (apache/kafka:4.1.1 or the offline stand-in):
# logs the broker in as `admin` and formats the storage with the SCRAM users of the `secrets`
# one-shot (/run/secrets/kafka-<principal>), then runs the image's own /etc/kafka/docker/run.
# Passwords go to the broker through the environment of this process only, never to the output.
set -euo pipefail
S=/run/secrets
[ -s "$S/kafka-admin" ] || { echo "compose-kafka: no $S/kafka-admin (the secrets one-shot makes it)" >&2; exit 1; }
admin="$(cat "$S/kafka-admin")"
scram='org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="'"$admin"'";'
plain='org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="'"$admin"'" user_admin="'"$admin"'";'
export KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG="$scram"
export KAFKA_LISTENER_NAME_HOST_SCRAM___SHA___512_SASL_JAAS_CONFIG="$scram"
export KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG="$plain"

# the configuration the image will use (KAFKA_FOO_BAR -> foo.bar, '__' -> '_', '___' -> '-'), for the format
props="$(mktemp)"; chmod 600 "$props"
env | while IFS='=' read -r name value; do
  case "$name" in KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_VERSION|KAFKA_JVM_PERFORMANCE_OPTS|KAFKA_LOG4J_OPTS) continue ;; KAFKA_*) ;; *) continue ;; esac
  key="${name#KAFKA_}"; key="${key//___/-}"; key="${key//__/@}"; key="${key//_/.}"; key="${key//@/_}"
  printf '%s=%s\n' "${key,,}" "$value"
done > "$props"
users=()
for f in "$S"/kafka-*; do
  users+=(--add-scram "SCRAM-SHA-512=[name=${f##*/kafka-},password=$(cat "$f")]")
done
echo "===> SCRAM users: $(for f in "$S"/kafka-*; do printf '%s ' "${f##*/kafka-}"; done)(formatting unless formatted)"
rc=0; out="$(/opt/kafka/bin/kafka-storage.sh format -t "${CLUSTER_ID:?}" -c "$props" --ignore-formatted "${users[@]}" 2>&1)" || rc=$?
rm -f "$props"
grep -v -i -E 'password|jaas|^\s' <<<"$out" | tail -n 3 || true
[ "$rc" = 0 ] || { echo "compose-kafka: kafka-storage format failed ($rc)" >&2; exit "$rc"; }

# a client login for the healthcheck (kafka-broker-api-versions.sh --command-config)
umask 077
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=%s\n' "$scram" > /tmp/admin-client.properties
exec /etc/kafka/docker/run "$@"
