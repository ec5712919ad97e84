"""Exceptions raised by jaxscale.

Every error a user can trigger with bad input is a subclass of
:class:`JaxscaleError` (itself a :class:`ValueError`), so callers can catch
one type and the CLI can print a single clear line.
"""

from __future__ import annotations


class JaxscaleError(ValueError):
    """Base class of all user-facing jaxscale errors."""


class DataError(JaxscaleError):
    """Input data is malformed: names the column, row and what was expected."""


class LawError(JaxscaleError):
    """A law name, law option or parameter vector is invalid."""


class FitError(JaxscaleError):
    """A fit cannot be run with the given settings (or no start succeeded)."""


class DerivedError(JaxscaleError):
    """A derived-quantity function that cannot be evaluated over the draws."""


class ArgumentError(JaxscaleError):
    """An argument is out of range or of the wrong kind (a level, budget, key, dtype, path): checked before work."""

