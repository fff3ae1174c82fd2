"""Running a built DAG: cache lookups, submitting ready steps, recording what happened.

The hot path is kept lean for long chains of small steps: git state and environment are read
once per pipeline run; cache lookups for every step that became ready together are one query;
finished steps are written in batches (``_record.Recorder``); small JSON outputs live in the
metadata store, so a step returning a number touches no file.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from mloop import registry
from mloop.backends import Backends
from mloop.compute import Executor, task_traceback
from mloop.errors import MloopError, PipelineError
from mloop.pipelines._graph import Graph, Node, Output, replace_outputs
from mloop.pipelines._record import Recorder, RunInfo, param_text
from mloop.pipelines._result import PipelineResult, StepResult, StepState, _LazyOutputs
from mloop.pipelines._task import Outcome, run_step
from mloop.pipelines._values import Stored, load_value, store_value
from mloop.store import (
    ArtifactRef,
    CacheEntry,
    RunStatus,
    StepEdge,
    StepRecord,
    new_id,
    now_ms,
)

__all__ = ["Observer", "execute"]

MAX_ERROR = 8000
CACHE_VERSION = 1

Observer = Callable[[StepResult], None]


def _has_output(value: Any) -> bool:
    if isinstance(value, Output):
        return True
    if isinstance(value, list | tuple):
        return any(_has_output(item) for item in value)
    if isinstance(value, dict):
        return any(_has_output(item) for item in value.values())
    return False


def _ref(entry: Mapping[str, Any]) -> ArtifactRef:
    """The artifact of a stored output, as an edge names it (the record exists already)."""
    return ArtifactRef(
        entry["digest"], entry["kind"], int(entry.get("size", 0)), "", {}, entry.get("artifact_id")
    )


class _Runner:
    def __init__(
        self,
        graph: Graph,
        info: RunInfo,
        backends: Backends,
        executor: Executor,
        *,
        cache: bool,
        resume_of: str | None,
        observer: Observer | None,
    ) -> None:
        self.graph = graph
        self.info = info
        self.b = backends
        self.executor = executor
        self.use_cache = cache
        self.resume = resume_of is not None
        self.observer = observer
        self.recorder = Recorder(backends)
        self.results = {
            key: StepResult(key=key, step=node.step.name) for key, node in graph.nodes.items()
        }
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.values: dict[tuple[str, int], Any] = {}
        self.waiting = {key: set(node.upstream) for key, node in graph.nodes.items()}
        self.below = graph.downstream()
        self.ready: list[str] = [key for key, deps in self.waiting.items() if not deps]
        self.inflight: dict[concurrent.futures.Future[Outcome], str] = {}
        # The entries the last run (or the resumed one) used: a rerun finds its hits here.
        self.known: dict[str, CacheEntry] = {}
        if cache or resume_of is not None:
            self.known = backends.store.pipelines.recent(
                experiment_id=info.experiment_id,
                pipeline=graph.pipeline,
                params=info.params_json,
                run_id=resume_of,
            )

    # -- state --------------------------------------------------------------------------

    def _set(self, key: str, state: StepState) -> None:
        result = self.results[key]
        result.state = state
        if self.observer is not None:
            self.observer(result)

    def _done(self, key: str) -> None:
        for child in self.below[key]:
            waiting = self.waiting[child]
            waiting.discard(key)
            if not waiting and self.results[child].state == "pending":
                self.ready.append(child)

    def value(self, output: Output) -> Any:
        """The value of an upstream output: in memory, or loaded from where it was stored."""
        slot = (output.node, output.index)
        if slot not in self.values:
            entry = self.entries[output.node][output.index]
            if entry["codec"] == "model":
                loaded = registry.load_model(
                    f"runs:/{entry['run_id']}/{entry['path']}",
                    store=self.b.store,
                    artifacts=self.b.artifacts,
                    settings=self.b.settings,
                )
                self.values[slot] = loaded.native
            else:
                node = self.graph.nodes[output.node]
                self.values[slot] = load_value(
                    entry, self.b.artifacts, node.step.options.serializer
                )
        return self.values[slot]

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        while self.ready or self.inflight:
            if self.ready:
                batch, self.ready = self.ready, []
                for key in self._from_cache(batch):
                    self._submit(key)
                continue
            done, _ = concurrent.futures.wait(self.inflight, return_when="FIRST_COMPLETED")
            for future in done:
                self._finish(self.inflight.pop(future), future)

    def cache_key(self, node: Node) -> str:
        def digest(output: Output) -> dict[str, str]:
            return {"$artifact": self.entries[output.node][output.index]["digest"]}

        body = {
            "v": CACHE_VERSION,
            "step": node.step.name,
            "code": node.step.digest,
            "outputs": list(node.step.options.outputs),
            "serializer": getattr(node.step.options.serializer, "name", None),
            "args": replace_outputs(node.arguments, digest),
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _from_cache(self, batch: list[str]) -> list[str]:
        """Record the steps of ``batch`` the cache holds; return the ones to run."""
        keys = {key: self.cache_key(self.graph.nodes[key]) for key in batch}
        for key, cache_key in keys.items():
            self.results[key].cache_key = cache_key
        # A resumed run takes what succeeded in the run it resumes, even cache=False steps;
        # the shared cache serves only steps that have caching on.
        shared = [
            key for key in batch if self.use_cache and self.graph.nodes[key].step.options.cache
        ]
        hits: dict[str, CacheEntry] = {}
        for key in batch:
            if (self.resume or key in shared) and keys[key] in self.known:
                hits[key] = self.known[keys[key]]
        missing = [keys[k] for k in shared if k not in hits]
        if missing:
            found = self.b.store.pipelines.lookup(missing)
            hits.update({k: found[keys[k]] for k in shared if keys[k] in found})
        to_run = []
        for key in batch:
            entry = hits.get(key)
            if entry is None:
                to_run.append(key)
            else:
                self._cached(key, entry)
        return to_run

    def _cached(self, key: str, entry: CacheEntry) -> None:
        node = self.graph.nodes[key]
        result = self.results[key]
        result.cached_from = entry.run_id
        result.outputs = entry.outputs
        result.run_id = new_id()
        self.entries[key] = entry.outputs
        now = now_ms()
        edges = self._input_edges(node)
        edges += [StepEdge("output", f"outputs/{o['name']}", _ref(o)) for o in entry.outputs]
        tags = {"mloop.cache.source_run": entry.run_id}
        self.recorder.add(self._record(node, result, "finished", now, now, None, tags, edges))
        self._set(key, "cached")
        self._done(key)

    def _submit(self, key: str) -> None:
        node = self.graph.nodes[key]
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        try:
            for name, value in node.arguments.items():
                resolved = replace_outputs(value, self.value)
                kind = node.step.signature.parameters[name].kind
                if kind == kind.VAR_POSITIONAL:
                    args.extend(resolved)
                elif kind == kind.VAR_KEYWORD:
                    kwargs.update(resolved)
                elif kind == kind.POSITIONAL_ONLY:
                    args.append(resolved)
                else:
                    kwargs[name] = resolved
            future = self.executor.submit(
                run_step, node.step, tuple(args), kwargs, resources=node.step.options.resources
            )
        except MloopError as error:
            now = now_ms()
            outcome = Outcome(False, None, f"{type(error).__name__}: {error}", "", "", 0, now, now)
            self._record_outcome(key, outcome)
            return
        self.results[key].run_id = new_id()
        self._set(key, "running")
        self.inflight[future] = key
        if future.done():  # an in-process executor ran it already
            self._finish(self.inflight.pop(future), future)

    def _finish(self, key: str, future: concurrent.futures.Future[Outcome]) -> None:
        try:
            outcome = future.result()
        except Exception as error:  # noqa: BLE001 - the executor's failure is the step's
            now = now_ms()
            remote = task_traceback(error)
            text = remote if remote else "".join(traceback.format_exception(error))
            outcome = Outcome(False, None, text, type(error).__qualname__, "", 1, now, now)
        self._record_outcome(key, outcome)

    # -- recording ----------------------------------------------------------------------

    def _input_edges(self, node: Node) -> list[StepEdge]:
        return [
            StepEdge("input", f"inputs/{path}", _ref(self.entries[o.node][o.index]))
            for path, o in node.inputs
        ]

    def _record(
        self,
        node: Node,
        result: StepResult,
        status: RunStatus,
        start_ms: int,
        end_ms: int,
        error: str | None,
        extra_tags: Mapping[str, str],
        edges: list[StepEdge],
    ) -> StepRecord:
        state = result.state if result.state != "running" else "finished"
        tags = {
            "mloop.pipeline": self.graph.pipeline,
            "mloop.step": node.step.name,
            "mloop.step.digest": node.step.digest,
            "mloop.step.state": "cached" if "mloop.cache.source_run" in extra_tags else state,
            **extra_tags,
        }
        if result.cache_key is not None:
            tags["mloop.cache.key"] = result.cache_key
        params = {
            name: param_text(value)
            for name, value in node.arguments.items()
            if not _has_output(value)
        }
        assert result.run_id is not None
        info = self.info
        return StepRecord(
            id=result.run_id,
            experiment_id=info.experiment_id,
            parent_run_id=info.run_id,
            name=node.key,
            user=info.user,
            status=status,
            start_ms=start_ms,
            end_ms=end_ms,
            error=error,
            git_commit=info.git.commit,
            git_dirty=info.git.dirty,
            git_branch=info.git.branch,
            git_remote=info.git.remote,
            command=info.command,
            environment_id=info.environment_id,
            params=params,
            tags=tags,
            edges=edges,
        )

    def _record_outcome(self, key: str, outcome: Outcome) -> None:
        node = self.graph.nodes[key]
        result = self.results[key]
        if result.run_id is None:
            result.run_id = new_id()
        result.attempts = outcome.attempts
        result.log = outcome.log
        result.seconds = (outcome.end_ms - outcome.start_ms) / 1000
        stored: list[Stored | None] = []
        models: list[tuple[int, Any]] = []
        if outcome.ok:
            try:
                values = self._split(node, outcome.value)
                for index, (name, value) in enumerate(
                    zip(node.step.options.outputs, values, strict=True)
                ):
                    item = store_value(
                        value,
                        step=key,
                        output=name,
                        serializer=node.step.options.serializer,
                        artifacts=self.b.artifacts,
                    )
                    stored.append(item)
                    if item is None:
                        models.append((index, value))
                    self.values[(key, index)] = value
            except MloopError as error:
                outcome.ok = False
                outcome.error = f"{type(error).__name__}: {error}"
                outcome.error_type = type(error).__name__
        edges = self._input_edges(node)
        if outcome.log:
            blob = self.b.artifacts.put_bytes(outcome.log.encode())
            log = ArtifactRef(blob.digest, "log", blob.size, self.b.artifacts.uri, {})
            edges.append(StepEdge("output", "logs/output.log", log))
        tags = {"mloop.step.attempts": str(outcome.attempts)}
        if not outcome.ok:
            text = (outcome.error or "")[-MAX_ERROR:]
            result.error = text
            if outcome.error_type:
                tags["mloop.step.error_type"] = outcome.error_type
            result.state = "failed"
            self.recorder.add(
                self._record(
                    node, result, "failed", outcome.start_ms, outcome.end_ms, text, tags, edges
                )
            )
            self._set(key, "failed")
            self._skip_below(key)
            return
        entries: list[dict[str, Any]] = []
        for item in stored:
            if item is not None:
                assert item.artifact is not None
                entry = {**item.entry, "size": item.artifact.size}
                entries.append(entry)
                edges.append(StepEdge("output", f"outputs/{entry['name']}", item.artifact))
            else:
                entries.append({})
        result.state = "finished"
        record: StepRecord | None = self._record(
            node, result, "finished", outcome.start_ms, outcome.end_ms, None, tags, edges
        )
        if models:
            # The registry links a model package to its run: the run must exist first.
            self.recorder.add(record)
            self.recorder.flush()
            record = None
            for index, model in models:
                name = node.step.options.outputs[index]
                logged = registry.log_model(
                    model,
                    run_id=result.run_id,
                    artifact_path=f"outputs/{name}",
                    store=self.b.store,
                    artifacts=self.b.artifacts,
                    settings=self.b.settings,
                )
                entries[index] = {
                    "name": name,
                    "codec": "model",
                    "digest": logged.artifact.digest,
                    "kind": logged.artifact.kind,
                    "size": logged.artifact.size,
                    "run_id": result.run_id,
                    "path": f"outputs/{name}",
                }
        result.outputs = entries
        self.entries[key] = entries
        cache = CacheEntry(
            result.cache_key or "", self.graph.pipeline, node.step.name, result.run_id, entries
        )
        self.recorder.add(record, cache)
        self._set(key, "finished")
        self._done(key)

    def _split(self, node: Node, value: Any) -> tuple[Any, ...]:
        count = len(node.step.options.outputs)
        if count == 1:
            return (value,)
        if not isinstance(value, tuple | list) or len(value) != count:
            shown = f"{len(value)} values" if isinstance(value, tuple | list) else "one value"
            raise PipelineError(
                f"step {node.key!r} declares {count} outputs "
                f"({', '.join(node.step.options.outputs)}) but returned {shown} "
                f"({type(value).__name__}); return a tuple of {count}"
            )
        return tuple(value)

    def _skip_below(self, failed: str) -> None:
        now = now_ms()
        for key in self.graph.descendants(failed):
            result = self.results[key]
            if result.state != "pending":
                continue
            result.state = "skipped"
            result.run_id = new_id()
            result.error = f"not run: upstream step {failed!r} failed"
            node = self.graph.nodes[key]
            edges = [
                StepEdge("input", f"inputs/{path}", _ref(self.entries[o.node][o.index]))
                for path, o in node.inputs
                if o.node in self.entries and self.entries[o.node][o.index]
            ]
            self.recorder.add(
                self._record(node, result, "killed", now, now, result.error, {}, edges)
            )
            self._set(key, "skipped")

    def outputs(self) -> _LazyOutputs:
        names: list[str] = []
        lookup: dict[str, Output] = {}
        for key, node in self.graph.nodes.items():
            if self.results[key].state not in ("finished", "cached"):
                continue
            if len(node.outputs) == 1:
                names.append(key)
                lookup[key] = node.outputs[0]
            for output in node.outputs:
                names.append(f"{key}.{output.name}")
                lookup[f"{key}.{output.name}"] = output
        return _LazyOutputs(names, lambda name: self.value(lookup[name]))


def execute(
    graph: Graph,
    returned: Any,
    info: RunInfo,
    backends: Backends,
    executor: Executor,
    *,
    cache: bool,
    resume_of: str | None,
    observer: Observer | None,
) -> PipelineResult:
    """Run the DAG; end the pipeline run as finished, failed or killed; return the result."""
    runner = _Runner(
        graph, info, backends, executor, cache=cache, resume_of=resume_of, observer=observer
    )
    store = backends.store
    try:
        runner.run()
        runner.recorder.close()
    except BaseException as error:
        status: RunStatus = "killed" if isinstance(error, KeyboardInterrupt) else "failed"
        try:
            runner.recorder.close()
        finally:
            text = "".join(traceback.format_exception(error))[-MAX_ERROR:]
            store.end_run(info.run_id, status, error=text)
        raise
    failed = [r for r in runner.results.values() if r.state == "failed"]
    message = None
    if failed:
        first = failed[0]
        message = f"step {first.key!r} failed:\n{first.error}"
        store.end_run(info.run_id, "failed", error=message[-MAX_ERROR:])
        output = None
    else:
        store.end_run(info.run_id, "finished")
        output = replace_outputs(returned, runner.value)
    return PipelineResult(
        run_id=info.run_id,
        pipeline=graph.pipeline,
        status="failed" if failed else "finished",
        steps=runner.results,
        output=output,
        outputs=runner.outputs(),
        error=message,
    )
