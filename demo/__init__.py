"""Perdure's demo: an order-fulfilment saga that survives its worker being killed.

Run it from the repository root with ``python -m demo`` (or ``make demo``).
"""
