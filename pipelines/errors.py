"""The one exception family for a user's mistakes.

Anything raised as a :class:`UserError` (bad input, a bad config, a usage
mistake, a model that is not there) is reported in one line and exits 2;
anything else is a bug in the pipeline: exit 3 with the traceback in the log.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: the message names the file, column, key or value and what was expected."""
