"""The exception that stops a job between two steps (kept free of torch for light engines)."""


class JobCancelled(Exception):
    """Raised from the step callback to stop a job between two steps."""
