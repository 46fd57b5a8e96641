"""Kafka consumers that merge status events into per-message state and load ClickHouse."""
