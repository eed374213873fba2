#!/usr/bin/env bash
# Create the service's topics on an Apache Kafka cluster with kafka-topics.sh, for
# clusters where the worker may not create topics (CRM_CREATE_TOPICS=false).
# Uses the same CRM_* variables as the worker; the defaults match stream/settings.py.
set -euo pipefail

BOOTSTRAP="${CRM_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
PARTITIONS="${CRM_TOPIC_PARTITIONS:-8}"
REPLICAS="${CRM_TOPIC_REPLICAS:-1}"
KAFKA_TOPICS="${KAFKA_TOPICS:-kafka-topics.sh}"

create() {  # name [--partitions N] [extra kafka-topics.sh args...]
    local name="$1" partitions="$PARTITIONS"
    shift
    if [ "${1:-}" = "--partitions" ]; then
        partitions="$2"
        shift 2
    fi
    "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor "$REPLICAS" "$@"
}

# Inputs: all three must have the same partition count (the worker checks at start-up).
create "${CRM_TOPIC_PURCHASES:-crm.purchases}"
create "${CRM_TOPIC_BROWSING:-crm.browsing}"
create "${CRM_TOPIC_FEEDBACK:-crm.feedback}"
# Outputs.
create "${CRM_TOPIC_ALERTS:-crm.alerts}"
create "${CRM_TOPIC_SCORES:-crm.customer-scores}" --config cleanup.policy=compact
create "${CRM_TOPIC_DEAD_LETTER:-crm.dead-letter}" --config retention.ms=2592000000
# The worker's own topics (it creates them when missing and allowed to; create them here
# where its principal may not): scan ticks and table changelogs co-partitioned with the
# input, one partition for feedback outcomes and the surge detector's checkpoints.
APP_ID="${CRM_APP_ID:-crm-scorer}"
create "$APP_ID-scan"
create "$APP_ID-feedback-signals" --partitions 1
create "$APP_ID-customers-changelog" --config cleanup.policy=compact
create "$APP_ID-model-checkpoints-changelog" --config cleanup.policy=compact
create "$APP_ID-surge-checkpoints-changelog" --partitions 1 --config cleanup.policy=compact
