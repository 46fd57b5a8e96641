"""Adapters every role may use: Kafka record sizing, ClickHouse (connection, migrations, inserts),
HTTP retry and backoff. Roles import these and ``schemas``, never each other."""
