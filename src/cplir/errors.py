"""User-facing errors.

Every mistake a user can make (a missing folder, an unreadable image, a wrong checkpoint, a bad config value)
raises a subclass of :class:`CplirError` whose message says what to do. The command line prints the message and
exits with status 2 instead of showing a traceback.
"""


class CplirError(Exception):
    """Base class of every error caused by user input."""


class ImageReadError(CplirError):
    """An image file is missing, empty, truncated or in an unsupported format."""


class ImageWriteError(CplirError):
    """An image file cannot be written (exists already, unsupported type or layout, disk error)."""


class CheckpointError(CplirError):
    """A checkpoint cannot be read or does not fit the model."""


class ConfigError(CplirError):
    """A configuration file or override holds a bad value."""


class DataError(CplirError):
    """A data set folder or list file does not have the expected layout."""


class InputSizeError(CplirError, ValueError):
    """A tensor given to a model has a shape the model cannot take."""


class MetricInputError(CplirError, ValueError):
    """Images given to a metric do not fit its protocol (shape, dtype, size, protocol name)."""


class OutputError(CplirError):
    """An output path cannot be written, or writing it would replace an earlier result."""


class RunInUseError(CplirError):
    """Another process is training in the same run folder."""
