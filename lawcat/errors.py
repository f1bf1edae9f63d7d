"""Errors users meet, each naming the problem and the fix (design.md, "Errors users meet")."""


class LawcatError(Exception):
    """Base class: the CLI prints the message alone and exits non-zero."""


class UnsupportedTeacherError(LawcatError, ValueError):
    pass


class TeacherLoadError(LawcatError, FileNotFoundError):
    pass


class TeacherMismatchError(LawcatError, ValueError):
    pass


class CheckpointError(LawcatError, ValueError):
    pass


class UnknownModelError(LawcatError, FileNotFoundError):
    """A model spec that is no path, no teacher name and no shipped student (the message lists the shipped ones)."""
