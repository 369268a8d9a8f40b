"""Shared test helpers (importable: pytest puts ``tests/`` on ``sys.path``)."""


class Stop(Exception):
    """Raised by :class:`KillAfter` to simulate a killed run."""


class KillAfter:
    """An observer that kills training (raises :class:`Stop`) at training step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_batch(self, report):
        if report.step == self.step:
            raise Stop
