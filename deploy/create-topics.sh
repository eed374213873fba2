#!/usr/bin/env bash
# Create the service's topics on an Apache Kafka cluster with kafka-topics.sh, for
# clusters where the worker may not create topics (CRM_CREATE_TOPICS=false).
# Uses the same CRM_* variables as the worker; the defaults match stream/settings.py.
set -euo pipefail

BOOTSTRAP="${CRM_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
PARTITIONS="${CRM_TOPIC_PARTITIONS:-8}"
REPLICAS="${CRM_TOPIC_REPLICAS:-1}"
KAFKA_TOPICS="${KAFKA_TOPICS:-kafka-topics.sh}"

create() {  # name [extra kafka-topics.sh args...]
    local name="$1"
    shift
    "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$name" --partitions "$PARTITIONS" --replication-factor "$REPLICAS" "$@"
}

# Inputs: all three must have the same partition count (the worker checks at start-up).
create "${CRM_TOPIC_PURCHASES:-crm.purchases}"
create "${CRM_TOPIC_BROWSING:-crm.browsing}"
create "${CRM_TOPIC_FEEDBACK:-crm.feedback}"
# Outputs.
create "${CRM_TOPIC_ALERTS:-crm.alerts}"
create "${CRM_TOPIC_SCORES:-crm.customer-scores}" --config cleanup.policy=compact
create "${CRM_TOPIC_DEAD_LETTER:-crm.dead-letter}" --config retention.ms=2592000000
# Faust creates its changelog topic (<app_id>-customers-changelog, compacted) itself.
