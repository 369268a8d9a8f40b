"""One exception type for bad user input: a one-line message naming the field."""

import numbers


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


def check_int(value: int, field: str, low: int, high: int | None = None,
              allowed: str | None = None) -> None:
    """Raise a one-line :class:`ConfigError` unless ``value`` is an integer (not a bool, not
    a float such as 2.0) in ``[low, high]`` (``high`` None: no upper bound); ``allowed``
    overrides the message's description of the range."""
    if allowed is None:
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    check(isinstance(value, numbers.Integral) and not isinstance(value, bool), field,
          f"{value!r} is not an integer", allowed)
    check(value >= low, field, f"{value} is below {low}", allowed)
    check(high is None or value <= high, field, f"{value} is outside [{low}, {high}]", allowed)


def check_number(value: float, field: str, allowed: str | None = None) -> None:
    """Raise a one-line :class:`ConfigError` unless ``value`` is a real number (an int or a
    float, not a bool or a string); finiteness and range are the caller's."""
    check(isinstance(value, numbers.Real) and not isinstance(value, bool), field,
          f"{value!r} is not a number", allowed)


def check_flag(value: bool, field: str) -> None:
    """Raise a one-line :class:`ConfigError` unless ``value`` is ``True`` or ``False``."""
    check(isinstance(value, bool), field, f"{value!r} is not a bool", "True or False")
