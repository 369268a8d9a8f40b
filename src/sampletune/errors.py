"""One exception type for bad user input: a one-line message naming the field."""


class ConfigError(ValueError):
    """A user-facing input error. ``str(err)`` is one line: ``field: problem (allowed: ...)``."""

    def __init__(self, field: str, problem: str, allowed: str | None = None):
        self.field = field
        msg = f"{field}: {problem}"
        if allowed:
            msg += f" (allowed: {allowed})"
        super().__init__(" ".join(msg.splitlines()))  # one line, whatever a value holds


def check(condition: bool, field: str, problem: str, allowed: str | None = None) -> None:
    """Raise :class:`ConfigError` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(field, problem, allowed)
