"""Tasks run as Ray tasks, locally or on a cluster, scheduled by the resources they ask for."""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

from mloop.compute._executor import BaseExecutor
from mloop.compute._resources import Resources
from mloop.compute._task import LinkedFuture, run_task, task_name
from mloop.errors import (
    ComputeError,
    InvalidValueError,
    MissingExtraError,
    ResourcesUnavailableError,
    WorkerLostError,
)

__all__ = ["RayExecutor"]

T = TypeVar("T")

_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}
LOCAL_OBJECT_STORE = 512 * 1024**2  # bytes; objects beyond it spill to disk


def _import_ray() -> Any:
    try:
        import ray  # an optional extra: imported only when a Ray executor is made
    except ImportError:
        raise MissingExtraError("ray", "ray", "the ray executor") from None
    return ray


def _local_runtime_env(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``given``, with this process's import path handed to the local workers.

    A local Ray's workers do not inherit ``sys.path``; with it, any task this process can
    import by name, they can too (as with the process pool).
    """
    env = dict(given or {})
    paths = [os.path.abspath(p or os.curdir) for p in sys.path]
    env_vars = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in paths if os.path.isdir(p)))}
    env_vars.update(env.get("env_vars") or {})
    env["env_vars"] = env_vars
    return env


class RayExecutor(BaseExecutor):
    """Run tasks on Ray: a local Ray when ``address`` is empty, else the cluster at ``address``
    (``ray://head:10001``, or ``auto`` for the cluster this machine belongs to).

    Each task is a Ray task with ``num_cpus``/``num_gpus``/``memory`` from its Resources, so
    Ray runs it only where those are free. A task asking for more than the cluster has fails
    at once with ResourcesUnavailableError instead of waiting forever. If Ray is already
    initialized in this process it is used as it is; a Ray this executor started is shut down
    with it. A local Ray's workers get this process's import path; on a cluster, make the
    tasks' modules importable there (installed, or ``runtime_env={"working_dir": "."}``).
    """

    name = "ray"

    def __init__(
        self,
        address: str = "",
        *,
        max_workers: int | None = None,
        object_store_memory: int | None = None,
        runtime_env: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(address, str):
            raise InvalidValueError(f"address must be a string, not {type(address).__name__}")
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise InvalidValueError(f"max_workers must be an int >= 1, not {max_workers!r}")
        self.address = address
        ray = self._ray = _import_ray()
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, runtime_env=dict(runtime_env or {}) or None)
                else:
                    ray.init(
                        num_cpus=max_workers,
                        include_dashboard=False,
                        object_store_memory=object_store_memory or LOCAL_OBJECT_STORE,
                        runtime_env=_local_runtime_env(runtime_env),
                    )
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = f"the Ray cluster at {address!r}" if address else "a local Ray"
                raise ComputeError(
                    f"could not start or join {where}: {error}; check compute.address in "
                    "mloop.yaml (ray://host:10001 or auto) and that the cluster is up"
                ) from error
            self._owns_ray = True
        self._totals = self._cluster_totals()
        self.max_workers = max_workers or max(1, int(self._totals.get("CPU", 1)))
        self._remote = ray.remote(run_task)
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def _cluster_totals(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in self._ray.cluster_resources().items()}

    def _check_feasible(self, resources: Resources) -> None:
        asked = {"cpu": resources.cpu, "gpu": resources.gpu, "memory": resources.memory or 0}

        def lacking() -> dict[str, float]:
            return {k: v for k, v in asked.items() if v > self._totals.get(_RAY_NAMES[k], 0.0)}

        if lacking():
            self._totals = self._cluster_totals()  # the cluster may have grown since
        short = lacking()
        if short:
            wanted = ", ".join(
                f"{key}={need:g} (the cluster has {self._totals.get(_RAY_NAMES[key], 0.0):g})"
                for key, need in short.items()
            )
            raise ResourcesUnavailableError(
                f"the task asks for {wanted}; Ray would wait for them forever - ask for less "
                "or add nodes that have them"
            )

    def submit(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        resources: Resources | None = None,
        **kwargs: Any,
    ) -> Future[T]:
        checked = self._check_submit(fn, resources)
        name = task_name(fn)
        try:
            self._check_feasible(checked)
        except ResourcesUnavailableError as error:
            refused: Future[T] = Future()
            refused.set_exception(error)
            return refused
        options: dict[str, Any] = {
            "num_cpus": checked.cpu,
            "num_gpus": checked.gpu,
            "max_retries": 0,  # a retry policy is the caller's (pipelines retry steps)
            "name": name.rpartition(".")[2][:100] or "task",
        }
        if checked.memory is not None:
            options["memory"] = checked.memory
        try:
            ref = self._remote.options(**options).remote(fn, args, kwargs)
        except (TypeError, pickle.PicklingError) as error:
            raise InvalidValueError(
                f"task {name} or its arguments cannot be sent to Ray ({error}); pass "
                "picklable values"
            ) from error

        def cancel() -> bool:
            self._ray.cancel(ref, recursive=True)
            return True

        outer: LinkedFuture[T] = LinkedFuture(cancel)
        with self._lock:
            self._pending.add(outer)
        outer.add_done_callback(self._forget)
        inner = ref.future()
        inner.add_done_callback(lambda done: self._settle(outer, done, name))
        return outer

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _settle(self, outer: LinkedFuture[Any], inner: Future[Any], name: str) -> None:
        exceptions = self._ray.exceptions
        try:
            outer.settle(inner.result())
        except (CancelledError, exceptions.TaskCancelledError):
            outer.settle_cancelled()
        except exceptions.RayTaskError as error:
            cause = error.cause if isinstance(error.cause, BaseException) else None
            if isinstance(cause, exceptions.TaskCancelledError):
                outer.settle_cancelled()
            else:
                outer.settle(error=cause or error)
        except exceptions.RaySystemError as error:
            failed = ComputeError(
                f"Ray could not run task {name}: {error}; if a module is missing, make it "
                "importable on the workers (install it, or RayExecutor(runtime_env=...))"
            )
            failed.__cause__ = error
            outer.settle(error=failed)
        except (exceptions.WorkerCrashedError, exceptions.OutOfMemoryError) as error:
            lost = WorkerLostError(
                f"the Ray worker running task {name} died ({error}); nothing it computed was "
                "kept - run it again"
            )
            lost.__cause__ = error
            outer.settle(error=lost)
        except BaseException as error:  # noqa: BLE001 - whatever Ray raised is the outcome
            outer.settle(error=error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait, cancel_futures=cancel_futures)
        with self._lock:
            pending = list(self._pending)
        if cancel_futures:
            for future in pending:
                future.cancel()
        if wait:
            for future in pending:
                with contextlib.suppress(CancelledError):
                    future.exception()
        with self._lock:
            busy = bool(self._pending)
        # Without wait, running tasks keep the Ray we started alive until the interpreter exits.
        if self._owns_ray and not busy and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns_ray = False
