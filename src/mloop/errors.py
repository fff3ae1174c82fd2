"""The one exception tree of mloop.

Every error mloop raises on purpose is a :class:`MloopError`; adapters translate the errors of
the libraries they drive (SQLAlchemy, fsspec, ...) into this tree where they meet them. Messages
say what is wrong and what to do about it. The faces (CLI, server) map these classes to exit
codes and HTTP statuses; nothing below them knows about either.

    MloopError
    ├── ConfigError                 settings in mloop.yaml / MLOOP_* are wrong
    ├── MissingExtraError           an optional extra is not installed (also an ImportError)
    ├── InvalidInputError           a caller passed something wrong (also a ValueError)
    │   ├── InvalidKeyError         a metric/param/tag/artifact name is not acceptable
    │   ├── InvalidValueError       a value has the wrong type or is out of range
    │   ├── InvalidFilterError      a search filter or order_by does not parse
    │   ├── SignatureError          model input does not match the model's signature
    │   └── UnsafePathError         a name would escape its folder (path traversal)
    ├── NotFoundError               no such run, experiment, artifact, ... (also a LookupError)
    ├── ConflictError               the request contradicts what is recorded
    │   └── RunNotActiveError       logging to a run that has ended
    ├── StoreError                  the metadata store cannot do what was asked
    │   ├── StoreUnavailableError   the database cannot be reached or is locked for too long
    │   └── SchemaVersionError      the database schema is newer than this mloop understands
    ├── ArtifactError               the artifact store cannot do what was asked
    │   └── IntegrityError          stored bytes do not match their sha256 digest
    ├── UntrustedModelError         loading a model would run code nobody has trusted
    ├── PipelineError               a pipeline cannot be built, or a step of its run failed
    │   └── StepTimeoutError        a step ran past its timeout and was stopped
    └── ComputeError                where work was sent could not run it
        ├── TaskError               a task failed with an error that cannot travel back as itself
        ├── WorkerLostError         the worker process running a task died
        └── ResourcesUnavailableError  a task asks for more than the executor can ever give
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ComputeError",
    "ConfigError",
    "ConflictError",
    "IntegrityError",
    "InvalidFilterError",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidValueError",
    "MissingExtraError",
    "MloopError",
    "NotFoundError",
    "PipelineError",
    "ResourcesUnavailableError",
    "RunNotActiveError",
    "SchemaVersionError",
    "SignatureError",
    "StepTimeoutError",
    "StoreError",
    "StoreUnavailableError",
    "TaskError",
    "UnsafePathError",
    "UntrustedModelError",
    "WorkerLostError",
]


class MloopError(Exception):
    """Base class of every error mloop raises on purpose."""


class ConfigError(MloopError):
    """A setting in mloop.yaml or an MLOOP_* environment variable is wrong."""


class MissingExtraError(MloopError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the {package!r} package, which is not installed; "
            f"install it with: pip install 'mloop[{extra}]'"
        )


class InvalidInputError(MloopError, ValueError):
    """A caller passed an argument mloop cannot accept."""


class InvalidKeyError(InvalidInputError):
    """A metric, param, tag or artifact name is empty, too long or has forbidden characters."""


class InvalidValueError(InvalidInputError):
    """A value has the wrong type or is out of range."""


class InvalidFilterError(InvalidInputError):
    """A search filter or order_by clause does not parse; the message names the bad token."""


class SignatureError(InvalidInputError):
    """Input to a model does not match its signature; ``column`` names the culprit, if one."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class UnsafePathError(InvalidInputError):
    """A name would reach outside the folder it belongs in (path traversal)."""


class NotFoundError(MloopError, LookupError):
    """The run, experiment, artifact or other object asked for does not exist."""


class ConflictError(MloopError):
    """The request contradicts what is already recorded (e.g. a param logged twice)."""


class RunNotActiveError(ConflictError):
    """Something was logged to a run that has already ended."""


class StoreError(MloopError):
    """The metadata store cannot do what was asked."""


class StoreUnavailableError(StoreError):
    """The metadata database cannot be reached, or stayed locked past the busy timeout."""


class SchemaVersionError(StoreError):
    """The database was written by a newer mloop whose schema this version does not know."""


class ArtifactError(MloopError):
    """The artifact store cannot do what was asked."""


class IntegrityError(ArtifactError):
    """Bytes read back do not match the sha256 digest they were stored under."""


class UntrustedModelError(MloopError):
    """A model package needs pickle or object types that the loader was not told to trust."""


class PipelineError(MloopError):
    """A pipeline cannot be built (bad step call, cycle, unknown pipeline) or its run failed.

    ``run_id`` is the failed pipeline run, when there is one: ``mloop run --resume RUN_ID``.
    """

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class StepTimeoutError(PipelineError):
    """A step ran longer than its ``timeout`` and its process was killed."""


class ComputeError(MloopError):
    """An executor (in-process, process pool, Ray) could not run a task it was given."""


class TaskError(ComputeError):
    """A task raised an exception that cannot be sent back as itself (it does not pickle).

    ``type_name`` is the original exception's qualified type name; ``remote_traceback`` the
    traceback formatted where it was raised.
    """

    def __init__(self, message: str, *, type_name: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        return (_task_error, (str(self), self.type_name, self.remote_traceback), self.__dict__)


def _task_error(message: str, type_name: str, remote_traceback: str) -> TaskError:
    return TaskError(message, type_name=type_name, remote_traceback=remote_traceback)


class WorkerLostError(ComputeError):
    """The worker process that ran (or was to run) a task died: killed, out of memory, crashed."""


class ResourcesUnavailableError(ComputeError):
    """A task asks for more CPUs, GPUs or memory than the executor can ever provide."""
