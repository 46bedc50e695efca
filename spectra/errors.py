"""The one error type of the data side: bad files, bad data settings."""


class DataError(ValueError):
    """Input data or data settings that cannot be used; the message is one line naming the file (and
    line) or the settings field, and what was expected."""
