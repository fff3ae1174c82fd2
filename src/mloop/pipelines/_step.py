"""``@step``: a plain function that, called inside a ``@pipeline``, adds a node to the DAG."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import inspect
import marshal
import math
import textwrap
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from mloop.compute import Resources
from mloop.errors import InvalidValueError, PipelineError
from mloop.pipelines._graph import current_graph
from mloop.pipelines._values import Serializer, resolve_serializer
from mloop.store import check_key

__all__ = ["Step", "StepOptions", "step"]


@dataclass(frozen=True)
class StepOptions:
    """How a step runs: its outputs, caching, retries, timeout, resources and serializer."""

    name: str
    outputs: tuple[str, ...] = ("output",)
    cache: bool = True
    retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    timeout: float | None = None
    resources: Resources | None = None
    serializer: Serializer | None = None


class Step:
    """A step of a pipeline: call it inside a ``@pipeline`` function to add it to the DAG.

    Called inside a pipeline it returns a lazy handle (:class:`~mloop.pipelines.Output`, or a
    tuple of them for a step with several outputs) that other steps take as arguments.
    Called anywhere else it simply calls the function, which keeps steps easy to test.
    """

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        if not callable(fn) or isinstance(fn, Step):
            raise InvalidValueError(f"@step decorates a function, not {fn!r}")
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        self._digest: str | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", options.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", "__main__")
        self.__wrapped__ = fn

    @property
    def name(self) -> str:
        return self.options.name

    def __repr__(self) -> str:
        return f"<Step {self.name!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = current_graph()
        if graph is None:
            return self.fn(*args, **kwargs)
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise PipelineError(f"step {self.name!r} was called with {error}") from None
        bound.apply_defaults()
        return graph.add(self, bound)

    @property
    def digest(self) -> str:
        """sha256 of the step's source code, normalised (formatting and comments do not count).

        Functions without source (made by exec, or in a REPL) are digested by their bytecode.
        """
        if self._digest is None:
            self._digest = source_digest(self.fn)
        return self._digest

    def with_options(self, **changes: Any) -> Step:
        """A copy of this step with some options changed: ``train.with_options(retries=2)``."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(StepOptions)}
        if unknown:
            raise InvalidValueError(f"unknown step options: {', '.join(sorted(unknown))}")
        merged = {f.name: getattr(self.options, f.name) for f in dataclasses.fields(StepOptions)}
        merged.update(changes)
        merged["outputs"] = _outputs(self.fn, merged["outputs"])
        return Step(self.fn, _options(**merged))

    def __reduce__(self) -> tuple[Any, ...]:
        # Executors send steps to other processes: by name when the module holds this very
        # object, else the function itself travels (by reference) with the options.
        module, qualname = self.__module__, self.__qualname__
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
        if found is self:
            return (_import_step, (module, qualname))
        return (Step, (self.fn, self.options))


def _import_step(module: str, qualname: str) -> Step:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, Step):
        raise PipelineError(f"{module}:{qualname} is no longer a step in this process")
    return found


def source_digest(fn: Callable[..., Any]) -> str:
    """sha256 of a function's source, parsed and dumped (so whitespace and comments do not
    count), or of its bytecode when there is no source."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        body = ast.dump(ast.parse(source), annotate_fields=False).encode()
    except (OSError, TypeError, SyntaxError):
        code = getattr(fn, "__code__", None)
        body = marshal.dumps(code) if code is not None else repr(fn).encode()
    return hashlib.sha256(body).hexdigest()


def _outputs(fn: Callable[..., Any], outputs: int | Sequence[str] | None) -> tuple[str, ...]:
    """Output names: declared (a count or names), else from a ``tuple[A, B]`` return type."""
    if outputs is None:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - an annotation that does not resolve: one output
            hints = {}
        returned = hints.get("return")
        args = typing.get_args(returned)
        if typing.get_origin(returned) is tuple and args and Ellipsis not in args:
            outputs = len(args)
        else:
            outputs = 1
    if isinstance(outputs, bool):
        raise InvalidValueError(f"outputs must be a count or a list of names, not {outputs!r}")
    if isinstance(outputs, int):
        if outputs < 1:
            raise InvalidValueError(f"a step has at least one output, not {outputs}")
        return ("output",) if outputs == 1 else tuple(f"output_{i}" for i in range(outputs))
    if isinstance(outputs, str) or not isinstance(outputs, Sequence) or not outputs:
        raise InvalidValueError(
            f"outputs must be a count or a non-empty list of names, not {outputs!r}"
        )
    names = tuple(check_key(name, "output name") for name in outputs)
    if len(set(names)) != len(names):
        raise InvalidValueError(f"output names must be unique, not {list(names)}")
    return names


def _seconds(value: Any, what: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValueError(f"{what} must be a number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidValueError(f"{what} must be {'>= 0' if allow_zero else '> 0'}, not {value}")
    return float(value)


def _options(**values: Any) -> StepOptions:
    options = StepOptions(**values)
    check_key(options.name, "step name")
    if "/" in options.name:
        raise InvalidValueError(f"step name {options.name!r} must not contain '/'")
    retries = options.retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidValueError(f"retries must be a whole number >= 0, not {retries!r}")
    _seconds(options.retry_delay, "retry_delay", allow_zero=True)
    if _seconds(options.retry_backoff, "retry_backoff", allow_zero=True) < 1:
        raise InvalidValueError(f"retry_backoff must be >= 1, not {options.retry_backoff}")
    if options.timeout is not None:
        _seconds(options.timeout, "timeout", allow_zero=False)
    if not isinstance(options.cache, bool):
        raise InvalidValueError(f"cache must be True or False, not {options.cache!r}")
    if options.resources is not None and not isinstance(options.resources, Resources):
        raise InvalidValueError(
            f"resources must be mloop.compute.Resources, not {type(options.resources).__name__}"
        )
    return options


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    outputs: int | Sequence[str] | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    retry_backoff: float = 2.0,
    timeout: float | None = None,
    resources: Resources | None = None,
    cpu: float | None = None,
    gpu: float | None = None,
    memory: int | str | None = None,
    serializer: Serializer | str | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: int | Sequence[str] | None = None,
    cache: bool = True,
    retries: int = 0,
    retry_delay: float = 1.0,
    retry_backoff: float = 2.0,
    timeout: float | None = None,
    resources: Resources | None = None,
    cpu: float | None = None,
    gpu: float | None = None,
    memory: int | str | None = None,
    serializer: Serializer | str | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step.

        @step
        def load(path: str) -> pd.DataFrame: ...

        @step(outputs=("train", "test"), retries=2, retry_delay=5, timeout=600, cpu=2)
        def split(df: pd.DataFrame, fraction: float = 0.2): ...

    ``outputs``: how many values the step returns (or their names); a ``tuple[A, B]`` return
    annotation says two. ``cache=False``: always run it. ``retries``: run it again that many
    times after a failure, waiting ``retry_delay`` seconds, times ``retry_backoff`` after each
    try. ``timeout``: seconds one try may take; a step with a timeout runs in a child process
    that is killed when the time is up. ``cpu``/``gpu``/``memory`` (or ``resources``): what
    the executor must give it. ``serializer``: how to store outputs that are not DataFrames,
    arrays, JSON values or models (e.g. ``"pickle"``, an explicit opt-in).
    """
    if resources is not None and (cpu, gpu, memory) != (None, None, None):
        raise InvalidValueError("pass either resources= or cpu=/gpu=/memory=, not both")
    if resources is None and (cpu, gpu, memory) != (None, None, None):
        resources = Resources(
            cpu=1.0 if cpu is None else cpu, gpu=0.0 if gpu is None else gpu, memory=memory
        )

    def decorate(function: Callable[..., Any]) -> Step:
        if isinstance(function, Step):
            raise InvalidValueError(f"{function!r} is already a step")
        if not callable(function):
            raise InvalidValueError(f"@step decorates a function, not {function!r}")
        return Step(
            function,
            _options(
                name=name if name is not None else getattr(function, "__name__", "step"),
                outputs=_outputs(function, outputs),
                cache=cache,
                retries=retries,
                retry_delay=retry_delay,
                retry_backoff=retry_backoff,
                timeout=timeout,
                resources=resources,
                serializer=resolve_serializer(serializer),
            ),
        )

    return decorate(fn) if fn is not None else decorate
