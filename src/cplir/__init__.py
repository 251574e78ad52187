"""cplir: all-in-one image restoration with PromptIR, Contrastive Prompt Learning and model contrastive learning."""

from cplir.errors import CheckpointError, ConfigError, CplirError, DataError, ImageReadError, InputSizeError

__version__ = "0.1.0"

__all__ = [
    "CplirError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ImageReadError",
    "InputSizeError",
    "__version__",
]
