-- Traces, SQLite, version 16.
--
-- runs.trace_context  the W3C trace context (JSON text of a propagation carrier: traceparent,
--                     tracestate, baggage) of the code that started the run, written at its
--                     start when tracing is on. Every execution of the run (after a park, a
--                     hand-back or a crash) continues that trace. NULL: no trace to continue.
ALTER TABLE {p}runs ADD COLUMN trace_context TEXT;
