"""One exception type per user-facing failure family.

The CLI prints the message (what failed, where, what would be valid) and exits non-zero,
without a traceback unless ``--debug``.
"""


class NlpforgeError(Exception):
    """Base of every error the CLI reports as a message rather than a traceback."""


class RecipeError(NlpforgeError):
    """The recipe (file or --set overrides) is invalid."""


class DataError(NlpforgeError):
    """Input data cannot be read or has no usable rows."""


class StageError(NlpforgeError):
    """A stage cannot run: a missing artifact from an earlier stage, a model that won't load."""


class ContractError(NlpforgeError):
    """The train/serve contract does not hold (docs/architecture.md, the train/serve prompt contract)."""
