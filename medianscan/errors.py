"""The one exception type a user ever sees: a plain sentence, never a traceback."""

from __future__ import annotations


class MedianscanError(Exception):
    """A problem the user can act on (bad input, missing camera, full disk).

    The message is printed as is on stderr, so it names the file, the frame and the reason.
    """


class StackError(MedianscanError):
    """A stack that cannot be blended: the frames do not differ only in noise, or cannot be read."""
