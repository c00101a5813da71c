"""Perdure: durable workflows for Python.

A workflow is a plain ``async def``; every durable operation inside it (a step, a clock read,
a random value) is journaled, so a run that dies with its process resumes on any worker
exactly where it stopped.
"""

from perdure.clock import Clock, SystemClock, VirtualClock
from perdure.context import now, random, run_id, step_key, uuid4
from perdure.definitions import Step, Workflow, step, workflow
from perdure.engine import Engine
from perdure.errors import (
    Cancelled,
    ChildFailed,
    InvalidConfiguration,
    LeaseLost,
    NonDeterminismError,
    NonRetryable,
    NotInWorkflow,
    PerdureError,
    RunBlocked,
    RunCancelled,
    RunFinished,
    RunNotFound,
    SerializationError,
    SignalTimeout,
    StepFailed,
    StorageUnavailable,
    UnknownWorkflowError,
    WorkflowFailed,
)
from perdure.handle import WorkflowHandle
from perdure.records import ErrorInfo, JournalEntry, RunInfo, RunStatus
from perdure.retry import RetryPolicy
from perdure.sync import SyncEngine, SyncHandle
from perdure.waits import ChildHandle, gather, sleep, sleep_until, start_child, wait_for_signal

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "ChildFailed",
    "ChildHandle",
    "Clock",
    "Engine",
    "ErrorInfo",
    "InvalidConfiguration",
    "JournalEntry",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow",
    "PerdureError",
    "RetryPolicy",
    "RunBlocked",
    "RunCancelled",
    "RunFinished",
    "RunInfo",
    "RunNotFound",
    "RunStatus",
    "SerializationError",
    "SignalTimeout",
    "Step",
    "StepFailed",
    "StorageUnavailable",
    "SyncEngine",
    "SyncHandle",
    "SystemClock",
    "UnknownWorkflowError",
    "VirtualClock",
    "Workflow",
    "WorkflowFailed",
    "WorkflowHandle",
    "gather",
    "now",
    "random",
    "run_id",
    "sleep",
    "sleep_until",
    "start_child",
    "step",
    "step_key",
    "uuid4",
    "wait_for_signal",
    "workflow",
]
