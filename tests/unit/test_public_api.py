"""Pin the public surface: adding or removing a public name is a deliberate act."""

from __future__ import annotations

import inspect

import perdure
from perdure import errors

EXPECTED = {
    "BlobMissing", "BlobStore", "Compressed", "DecryptionError", "DirectoryBlobs", "Encrypted",
    "PayloadCodec", "PayloadTooLarge", "PayloadUnavailable",
    "Cancelled", "ChildFailed", "ChildHandle", "Clock", "Engine", "ErrorInfo",
    "InvalidConfiguration", "InvalidCursor", "JournalEntry", "LeaseLost", "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow", "PerdureError", "Readiness", "ResumeRecord", "RetryPolicy", "RunBlocked",
    "RunCancelled", "RunFinished",
    "RunInfo", "RunNotFound", "RunPage", "RunStatus", "SerializationError", "SignalTimeout", "Step",
    "StepFailed", "StorageUnavailable", "SyncEngine", "SyncHandle", "SystemClock",
    "UnknownWorkflowError",
    "VirtualClock", "Workflow", "WorkflowFailed", "WorkflowHandle", "gather", "now", "random",
    "run_id", "set_tags", "sleep", "sleep_until", "start_child", "step", "step_key", "uuid4",
    "wait_for_signal", "workflow",
    # talking to running workflows
    "Callback", "CallbackAlreadyCompleted", "CallbackFailed", "CallbackNotFound",
    "CallbackTimeout", "EventTimeout", "Request", "RequestRejected", "RequestTimeout", "Stream",
    "StreamClosed", "callback", "set_event", "stream", "wait_for_request",
    # the outbox
    "DeadLetter", "InvalidSignature", "Outbox", "OutboxEvent", "OutboxStats", "WebhookRejected",
    "WebhookSink", "emit", "verify_webhook",
    # long-lived runs and changing code safely
    "ContinueAsNew", "Incarnation", "JournalFormatError", "ReplayMismatch", "deprecate_patch",
    "journal_size", "patched",
    # serverless and cron-driven hosts
    "RunOnceSummary", "TickSummary",
    # schedules
    "Overlap", "Schedule", "ScheduleInfo", "ScheduleNotFound",
    # flow control
    "FlowReport", "Limit", "LimitState", "Queue", "QueueState", "Rate",
    # the dashboard's overview
    "Activity", "WorkerInfo",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(perdure.__all__) == EXPECTED
    for name in perdure.__all__:
        assert getattr(perdure, name).__doc__, f"{name} has no docstring"


def test_every_error_is_a_perdure_error_except_non_retryable() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert inspect.isclass(cls)
        if name == "NonRetryable":
            assert not issubclass(cls, errors.PerdureError)
        else:
            assert issubclass(cls, errors.PerdureError), name
        assert name in (errors.__doc__ or ""), f"{name} missing from the hierarchy drawing"
