"""The analysis layer's user errors: the CLI prints them as one line and exits 2."""
from ..errors import LawcatError


class AnalysisError(LawcatError, ValueError):
    """A bad request for a figure: a layer or head out of range, a model that is not a student, a prompt too long."""
