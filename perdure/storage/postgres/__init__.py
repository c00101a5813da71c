"""The PostgreSQL backend (asyncpg): the adapter, its pool, session, journal writer,
configuration, schema and queries."""
