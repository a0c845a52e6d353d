"""The one exception family for a user's mistakes.

Anything raised as a :class:`UserError` (bad input, a bad config, a usage
mistake, a model that is not there) is reported in one line and exits 2;
anything else is a bug in the pipeline: exit 3 with the traceback in the log.

The feature core and the model package do not depend on the pipeline, so each
has its own error for what a user can fix (:class:`features.config.FeatureError`,
:class:`models.errors.ModelInputError`); :data:`USER_ERRORS` is the whole family,
together with the file-system errors a user fixes (a path that does not exist,
is a folder where a file was expected or the reverse, or may not be read or
written: each names the path).
"""

from __future__ import annotations

from features.config import FeatureError
from models.errors import ModelInputError, ModelNotFoundError


class UserError(Exception):
    """Something the user can fix: the message names the file, column, key or value and what was expected."""


USER_ERRORS: tuple[type[Exception], ...] = (
    UserError,
    FeatureError,
    ModelInputError,
    ModelNotFoundError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
