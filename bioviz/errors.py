"""User-facing errors: each carries one line that names the column, file or well at fault.

The CLI prints ``str(err)`` and exits 2; the dashboard shows it in ``st.error``. Anything
that is not a BiovizError is a bug and keeps its traceback.
"""


class BiovizError(Exception):
    """An error caused by the user's input, explained in one line."""


class DatasetError(BiovizError):
    """A dataset folder that does not follow docs/dataset-format.md."""


class EmbedderError(BiovizError):
    """An embedder that cannot run on this input (unknown name, bad weights, bad table)."""


class BenchmarkError(BiovizError):
    """A map or relationship table that cannot be benchmarked."""
