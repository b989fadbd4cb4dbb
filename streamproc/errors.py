"""One exception hierarchy. User-facing errors say what was wrong, where, and how to fix it."""

from __future__ import annotations


class StreamprocError(Exception):
    """Base class of every error streamproc raises on purpose."""


class ConfigError(StreamprocError):
    """The configuration is invalid. ``str()`` reads ``file:line: what is wrong, how to fix it``."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.hint = hint
        self.message = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        text = where + message
        if hint:
            text += f"; {hint}"
        super().__init__(text)


class SourceError(StreamprocError):
    """A source (Kafka, MQTT, file) could not be reached or read."""


class DeliveryError(StreamprocError):
    """A notification could not be delivered."""


class ConfigErrors(ConfigError):
    """Several configuration errors found in one pass; ``str()`` has one line for each, so a
    user fixes them all at once instead of one per run. ``file``, ``line``, ``message`` and
    ``hint`` are the first one's."""

    errors: list[ConfigError]

    def __init__(self, errors: list[ConfigError]) -> None:
        flat: list[ConfigError] = []
        for error in errors:
            flat.extend(error.errors if isinstance(error, ConfigErrors) else [error])
        self.errors = flat
        first = flat[0]
        super().__init__(first.message, file=first.file, line=first.line, hint=first.hint)
        self.args = ("\n".join(str(e) for e in flat),)

    @staticmethod
    def of(errors: list[ConfigError]) -> ConfigError:
        """The one error, or all of them together."""
        return errors[0] if len(errors) == 1 else ConfigErrors(errors)
