"""The SQLite backend: the adapter, its connection thread, its schema and queries."""
