"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class ReviewsenseError(Exception):
    """An error caused by the user's input or environment, with a message saying what to do."""


class DataError(ReviewsenseError):
    """Bad input data: the message names the file, the row and what was expected."""


class ConfigError(ReviewsenseError):
    """An invalid config value or override key: the message names the key."""


class ModelError(ReviewsenseError):
    """A model that cannot be resolved or loaded."""
