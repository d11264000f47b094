"""Exceptions whose messages tell the user what is wrong and what to do."""


class CRMWorkbenchError(Exception):
    """Base class of every error raised on purpose by crm_lib."""


class DataValidationError(CRMWorkbenchError, ValueError):
    """The transaction log cannot be analysed as it is.

    The message names the file, the column, how many rows are affected, an example value
    and what to do.
    """


class ParamsError(CRMWorkbenchError, ValueError):
    """A params file (``params/*.yaml``) is missing, malformed or has unknown keys."""


class ModelFitError(CRMWorkbenchError, RuntimeError):
    """A model could not be fitted (no convergence, too little data to identify it)."""
