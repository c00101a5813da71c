"""Flow control: queues, limits, schedules and routing (empty until that capability lands).

Sits below the in-workflow layer (a step names the limits it takes) and above storage, whose
port enforces the limits inside the claims and writes that take them.
"""
