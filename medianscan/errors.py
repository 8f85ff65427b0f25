"""The one exception type a user ever sees: a plain sentence, never a traceback."""

from __future__ import annotations


class MedianscanError(Exception):
    """A problem the user can act on (bad input, missing camera, full disk).

    The message is printed as is on stderr, so it names the file, the frame and the reason.
    """


class StackError(MedianscanError):
    """A stack that cannot be blended: the frames do not differ only in noise, or cannot be read."""


DROP_HINT_CLI = "--drop-bad-frames blends the rest"
DROP_HINT_CONFIG = "set blend.drop_bad_frames: true in the config to blend the rest"


class BadFramesError(StackError):
    """Some frames of a stack cannot be used; `droppable` when enough good ones remain to blend without them.

    The message carries no hint: how to drop the bad frames depends on where the user is (a CLI flag, or a
    config key for the daemon and the hot folder), so each caller adds its own with `hinted`.
    """

    def __init__(self, message: str, *, droppable: bool) -> None:
        super().__init__(message)
        self.droppable = droppable

    def hinted(self, hint: str) -> str:
        return f"{self} ({hint})" if self.droppable else str(self)
