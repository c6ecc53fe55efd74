class ApplicationError(Exception):
    """A business rule refused the request; `field` names the offending input when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InputInvalid(ApplicationError):
    """Input refused before anything was written; `problems` lists (field path, message),
    the first one also being the error's own message and field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        path, message = problems[0]
        super().__init__(message, field=path)
