"""Per-customer state and online models (River). No Kafka or Faust imports here."""
