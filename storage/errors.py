"""The one base of the errors tamis reports to a person: :class:`TamisError`, with a kind.

Every layer raises these for problems a user can fix; the CLI catches the base alone, prints
its message in one line and exits with :attr:`TamisError.exit_code`. A programming error stays
an ordinary exception with its traceback. The pure algorithms in ``selectors/`` raise
``ValueError`` (as scikit-learn does); the layers above turn the ones a user can cause into
one of these.

======  ==========================================================  ============================
kind    what it means                                               raised
======  ==========================================================  ============================
config  a configuration key, value, flag or runner option            while loading, before work
input   an input file that cannot be read as asked (names the file)  while planning, before work
plan    inputs and settings that cannot make the job asked for       while planning, before work
        (an empty target set, a budget the pool cannot hold, an
        output folder in use)
cache   an earlier job's output (embedding cache, clusters) that is  while planning, before work
        missing, unfinished or made from other data
model   a model that cannot be loaded or is not installed            while planning, before work
data    data met while the job runs that it cannot go on with        in a worker; exit code 1
        (no negatives left to train on), or an output that does
        not match its manifest (``tamis verify``)
======  ==========================================================  ============================
"""

from __future__ import annotations


class TamisError(Exception):
    """A problem a user can fix, stated in one line that names the key, file or stage."""

    kind = "error"
    #: The CLI's exit status: 2 for what is found before any work, 1 for what stops a job.
    exit_code = 2


class ConfigError(TamisError, ValueError):
    """A configuration that cannot run: the message names the key and what it allows."""

    kind = "config"


class InputError(TamisError, ValueError):
    """An input that cannot be read as asked: the message names the file and the field."""

    kind = "input"


class PlanError(TamisError, ValueError):
    """Inputs and settings that cannot make the job asked for; found before any work."""

    kind = "plan"


class CacheError(TamisError, ValueError):
    """An earlier job's output (an embedding cache, clusters) that is missing, unfinished or
    does not fit the job."""

    kind = "cache"


class ModelError(TamisError, ValueError):
    """A model that cannot be loaded as configured; raised before any work."""

    kind = "model"


class DataError(TamisError, ValueError):
    """Data met while the pipeline runs that the job cannot go on with (no negatives left to
    train on, a sample too small to fit a model)."""

    kind = "data"
    exit_code = 1


class VerifyError(DataError):
    """A shard, a checksum or a count does not match the manifest."""
