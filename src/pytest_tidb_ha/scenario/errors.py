"""The one error type of the case language.

Every problem in a case -- from a YAML file or from markers -- is a
:class:`ScenarioError` whose text starts with where it came from
(``file:line`` or the test's nodeid), so a scenario author can jump there.
"""

from __future__ import annotations

from .model import SourceRef


class ScenarioError(ValueError):
    """A case that cannot be run as written."""

    def __init__(self, source: SourceRef, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class FieldError(ValueError):
    """A bad value of one field, before we know its line (builders raise it)."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)
