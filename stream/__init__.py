"""The Kafka/Faust layer: app, agents, web views, settings, CLI, embedded broker."""
