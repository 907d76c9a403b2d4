"""Errors a user can act on: each names the file, the row or key, and what was expected.

The command line prints them as one line on stderr with a non-zero exit, without a traceback
(`--debug` or SPARKRL_DEBUG=1 shows it). Kept in a module of their own, below everything
else, so that any module can raise them without importing the configuration.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, with where it was found."""


class ImageError(RuntimeError):
    """An image a training row needs cannot be opened; the message names the row and the file."""
