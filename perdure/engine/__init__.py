"""The engine: the composition root (``engine``), the worker that claims runs and keeps their
leases (``worker``), the runner that drives one claimed run (``runner``), run handles
(``handle``) and the blocking façade (``sync``)."""
