"""Perdure: durable workflows for Python.

A workflow is a plain ``async def``; every durable operation inside it (a step, a clock read,
a random value) is journaled, so a run that dies with its process resumes on any worker
exactly where it stopped.
"""

from perdure.clock import Clock, SystemClock, VirtualClock
from perdure.engine.engine import Engine
from perdure.engine.handle import WorkflowHandle
from perdure.engine.sync import SyncEngine, SyncHandle
from perdure.errors import (
    Cancelled,
    ChildFailed,
    InvalidConfiguration,
    InvalidCursor,
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
from perdure.records import ErrorInfo, JournalEntry, ResumeRecord, RunInfo, RunPage, RunStatus
from perdure.retry import RetryPolicy
from perdure.workflow.children import ChildHandle, start_child
from perdure.workflow.definitions import Step, Workflow, step, workflow
from perdure.workflow.parallel import gather
from perdure.workflow.signals import wait_for_signal
from perdure.workflow.tags import set_tags
from perdure.workflow.timers import sleep, sleep_until
from perdure.workflow.values import now, random, run_id, step_key, uuid4

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "ChildFailed",
    "ChildHandle",
    "Clock",
    "Engine",
    "ErrorInfo",
    "InvalidConfiguration",
    "InvalidCursor",
    "JournalEntry",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow",
    "PerdureError",
    "ResumeRecord",
    "RetryPolicy",
    "RunBlocked",
    "RunCancelled",
    "RunFinished",
    "RunInfo",
    "RunNotFound",
    "RunPage",
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
    "set_tags",
    "sleep",
    "sleep_until",
    "start_child",
    "step",
    "step_key",
    "uuid4",
    "wait_for_signal",
    "workflow",
]
