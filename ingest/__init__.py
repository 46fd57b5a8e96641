"""Webhook ingest: provider payloads -> canonical events -> Kafka, acknowledged only after Kafka acks."""
