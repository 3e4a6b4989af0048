"""The seedgrid worker: a Celery app, the pipeline engine and its tasks; the only place torch lives."""
