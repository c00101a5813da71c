"""Storage: the port and its adapters."""
