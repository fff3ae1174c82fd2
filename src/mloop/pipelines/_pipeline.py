"""``@pipeline``: a function whose step calls make the DAG, and ``Pipeline.run``."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

from mloop.artifacts import ArtifactStore
from mloop.backends import backends
from mloop.compute import Executor, get_executor
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidValueError, PipelineError
from mloop.pipelines._graph import Graph, Output, building, current_graph, walk_outputs
from mloop.pipelines._record import start_pipeline_run
from mloop.pipelines._result import PipelineResult
from mloop.pipelines._run import Observer, execute
from mloop.pipelines._schedule import Schedule
from mloop.store import Store, check_key, tag_value

__all__ = ["CATCHUP", "Pipeline", "pipeline"]

CATCHUP = ("latest", "all", "skip")
PARAMS_TAG = "mloop.pipeline.params"
RESUMED_TAG = "mloop.pipeline.resumed_from"


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back: tuples become lists."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _params_json(name: str, params: Mapping[str, Any]) -> str:
    """The parameters as canonical JSON (recorded, so a resumed run gets them back)."""
    try:
        text = json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidValueError(
            f"pipeline {name!r}: parameters must be JSON values (numbers, strings, lists, "
            f"dicts): {error}; pass data through a step instead"
        ) from None
    if json.loads(text) != _plain(dict(params)):
        raise InvalidValueError(
            f"pipeline {name!r}: parameters must survive JSON unchanged (dict keys must be strings)"
        )
    tag_value(PARAMS_TAG, text)  # the store's size limit, checked before anything runs
    return text


class Pipeline:
    """A pipeline: ``run()`` it, or look at its DAG with ``graph()``.

    Attributes for schedulers: ``schedule`` (a cron expression or None), ``catchup`` (what to
    do about missed slots: ``latest``, ``all`` or ``skip``) and ``triggers``.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        schedule: str | Schedule | None = None,
        catchup: str = "latest",
        triggers: Iterable[object] = (),
        experiment: str | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidValueError(f"@pipeline decorates a function, not {fn!r}")
        self.fn = fn
        self.name = check_key(name if name is not None else fn.__name__, "pipeline name")
        if schedule is not None and not isinstance(schedule, Schedule):
            try:
                Schedule(schedule)
            except InvalidValueError as exc:
                raise InvalidValueError(f"pipeline {self.name!r}: {exc}") from None
        if catchup not in CATCHUP:
            raise InvalidValueError(
                f"pipeline {self.name!r}: catchup must be one of {', '.join(CATCHUP)}, "
                f"not {catchup!r}"
            )
        if isinstance(triggers, str | bytes) or not isinstance(triggers, Iterable):
            raise InvalidValueError(f"triggers must be a list of triggers, not {triggers!r}")
        # A cron string runs in UTC; a Schedule carries its own time zone and catch-up policy.
        self.schedule: str | Schedule | None = schedule
        self.catchup: str = catchup
        self.triggers: tuple[object, ...] = tuple(triggers)
        self.experiment = experiment
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}>"

    # -- building -----------------------------------------------------------------------

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The pipeline function's arguments for ``params``, defaults filled in."""
        try:
            bound = self.signature.bind(**params)
        except TypeError as error:
            expected = ", ".join(
                p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                for p in self.signature.parameters.values()
            )
            raise InvalidValueError(
                f"pipeline {self.name!r}: {error}; its parameters are: {expected or 'none'}"
            ) from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def build(self, **params: Any) -> tuple[Graph, Any]:
        """Call the pipeline function to build its DAG; returns it and what the function
        returned (with step outputs as :class:`Output` handles)."""
        if current_graph() is not None:
            raise PipelineError(
                f"pipeline {self.name!r} was called while another pipeline was being built; "
                "call its steps instead (pipelines do not nest)"
            )
        arguments = self.bind(params)
        graph = Graph(self.name)
        with building(graph):
            try:
                returned = self.fn(**arguments)
            except PipelineError:
                raise
            except Exception as error:
                raise PipelineError(
                    f"building pipeline {self.name!r} failed: {type(error).__name__}: {error}"
                ) from error
        if not graph.nodes:
            raise PipelineError(
                f"pipeline {self.name!r} called no steps; call @step functions in its body"
            )
        found: list[tuple[str, Output]] = []
        walk_outputs(returned, "return", found)
        for _, output in found:
            if output.graph is not graph:
                raise PipelineError(
                    f"pipeline {self.name!r} returned an output of another pipeline"
                )
        return graph, returned

    def graph(self, **params: Any) -> Graph:
        """The DAG (export it with ``to_text()``, ``to_mermaid()`` or ``to_dot()``)."""
        return self.build(**params)[0]

    # -- running ------------------------------------------------------------------------

    def __call__(self, **params: Any) -> PipelineResult:
        """Run the pipeline with these parameters (same as ``run(**params)``)."""
        return self.run(**params)

    def run(
        self,
        *,
        cache: bool = True,
        executor: str | Executor | None = None,
        resume: str | None = None,
        tags: Mapping[str, Any] | None = None,
        raise_on_error: bool = True,
        observer: Observer | None = None,
        max_workers: int | None = None,
        experiment: str | None = None,
        params: Mapping[str, Any] | None = None,
        store: Store | None = None,
        artifacts: ArtifactStore | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> PipelineResult:
        """Run the pipeline and record it: one run for the pipeline, a child run per step.

            result = training.run(seed=1)                      # parameters by keyword
            result = training.run(executor="inprocess")        # debug: steps in this thread
            result = training.run(cache=False)                 # run every step
            result = training.run(resume=failed_run_id)        # reuse what succeeded

        ``executor``: ``inprocess``, ``process`` or ``ray`` (default: ``compute.backend`` of
        the settings), or an executor object. A step whose code, parameters and inputs match
        an earlier successful run is not run again unless ``cache=False`` (or the step says
        ``cache=False``). ``resume``: a failed run of this pipeline; its parameters are reused
        and every step that succeeded there is taken as it was. A failed step raises
        :class:`~mloop.errors.PipelineError` (with its traceback and the run id) unless
        ``raise_on_error=False``. ``observer`` is called with each step's result whenever its
        state changes.
        """
        if not isinstance(cache, bool):
            raise InvalidValueError(f"cache must be True or False, not {cache!r}")
        if tags is not None and not isinstance(tags, Mapping):
            raise InvalidValueError(f"tags must be a mapping, not {type(tags).__name__}")
        merged = {**(params or {}), **kwargs}
        b = backends(store, artifacts, settings)
        run_tags: dict[str, Any] = dict(tags or {})
        if resume is not None:
            previous = b.store.get_run(resume)
            if previous.kind != "pipeline" or previous.tags.get("mloop.pipeline") != self.name:
                raise InvalidValueError(
                    f"run {resume} is not a run of pipeline {self.name!r} (it is a "
                    f"{previous.kind} run named {previous.name!r}); pass a run id that "
                    f"mloop run {self.name} printed"
                )
            if previous.status == "finished":
                raise ConflictError(
                    f"run {resume} of pipeline {self.name!r} finished; there is nothing to "
                    "resume - run the pipeline again (unchanged steps come from the cache)"
                )
            saved = json.loads(previous.tags.get(PARAMS_TAG, "{}"))
            merged = {**saved, **merged}
            run_tags[RESUMED_TAG] = resume
        arguments = self.bind(merged)
        params_json = _params_json(self.name, arguments)
        graph, returned = self.build(**arguments)
        owned = executor is None or isinstance(executor, str)
        runner: Executor = (
            get_executor(executor, max_workers=max_workers, settings=b.settings)  # type: ignore[arg-type]
            if owned
            else executor  # type: ignore[assignment]
        )
        try:
            info = start_pipeline_run(
                b,
                self.name,
                experiment=experiment or self.experiment,
                params=arguments,
                params_json=params_json,
                tags=run_tags,
            )
            result = execute(
                graph,
                returned,
                info,
                b,
                runner,
                cache=cache,
                resume_of=resume,
                observer=observer,
            )
        except BaseException:
            if owned:  # steps still queued are dropped; the run is recorded as failed/killed
                runner.shutdown(wait=False, cancel_futures=True)
            raise
        if owned:
            runner.shutdown()
        if result.status != "finished" and raise_on_error:
            raise PipelineError(
                f"pipeline {self.name!r} failed: {result.error}\n"
                f"fix it and resume the run with: mloop run {self.name} --resume {result.run_id}",
                run_id=result.run_id,
            )
        return result


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    *,
    name: str | None = None,
    schedule: str | Schedule | None = None,
    catchup: str = "latest",
    triggers: Iterable[object] = (),
    experiment: str | None = None,
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    schedule: str | Schedule | None = None,
    catchup: str = "latest",
    triggers: Iterable[object] = (),
    experiment: str | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function a pipeline: the steps it calls, and how their outputs flow, are the DAG.

        @pipeline(schedule="0 3 * * *")
        def training(seed: int = 0):
            train_df, test_df = split(load(), seed=seed)
            model = fit(train_df)
            return evaluate(model, test_df)

    ``schedule``: a cron expression (UTC) that ``mloop scheduler`` runs it on, or a
    ``Schedule("0 3 * * *", tz="Europe/Berlin", catchup="all")`` for another time zone;
    ``catchup``: what the scheduler does about slots it missed (``latest``: run the last one,
    ``all``, ``skip``);
    ``triggers``: events that start it. ``experiment``: where its runs are recorded.
    """

    def decorate(function: Callable[..., Any]) -> Pipeline:
        if isinstance(function, Pipeline):
            raise InvalidValueError(f"{function!r} is already a pipeline")
        return Pipeline(
            function,
            name=name,
            schedule=schedule,
            catchup=catchup,
            triggers=triggers,
            experiment=experiment,
        )

    return decorate(fn) if fn is not None else decorate
