"""The evaluation's user errors: the CLI prints the message alone and exits non-zero."""


class ResultsError(ValueError):
    """A results file is missing, unreadable, or not a lawcat results file."""


class ResultsNotFoundError(ResultsError, FileNotFoundError):
    """No results file where one was expected."""
