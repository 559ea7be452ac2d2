"""What a command tells its user when it cannot do what was asked: `UserError` carries a message
and what to do about it, printed as one or two lines by the CLI (never a traceback unless
`--debug`)."""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can act on: `message` says what happened, `hint` what to do."""

    def __init__(self, message: str, hint: str | None = None, *, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def lines(self) -> list[str]:
        return [self.message] + ([self.hint] if self.hint else [])
