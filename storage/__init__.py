"""ClickHouse storage: table layouts, stored row shapes and the numbered migrations. Pure SQL text."""
