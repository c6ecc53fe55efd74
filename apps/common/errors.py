class ApplicationError(Exception):
    """A business rule refused the request; `field` names the offending input when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
