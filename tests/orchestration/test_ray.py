"""A pipeline on a real local Ray: steps become Ray tasks with the CPUs they declare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# Run in a fresh interpreter: Ray is started for this pipeline alone, with the repository on
# the workers' path (they import tests.orchestration.flows by name, as process-pool workers do).
SCRIPT = """
import json, os, sys
import ray
ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2,
         log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": sys.argv[1]}})
from mloop.compute import RayExecutor
from mloop.store import SqlStore
from tests.orchestration import flows
store = SqlStore(f"sqlite:///{sys.argv[2]}")
with RayExecutor() as executor:
    result = flows.ray_flow.run(rows=10, executor=executor, store=store)
    again = flows.ray_flow.run(rows=10, executor=executor, store=store)
print(json.dumps({"status": result.status, "output": result.output, "driver": os.getpid(),
                  "cached": again.cache_hits}))
"""


@pytest.mark.slow
def test_a_pipeline_runs_on_ray_with_its_steps_resources(tmp_path: Path) -> None:
    script = tmp_path / "on_ray.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLOOP_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script), str(ROOT), str(tmp_path / "mloop.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == "finished"
    machine, total = report["output"]
    assert machine["cpus"] == 2.0  # @step(cpu=2): Ray gave the task both CPUs
    assert machine["pid"] != report["driver"]  # it ran in a Ray worker, not the driver
    assert total == 45.0  # a DataFrame made on Ray, stored as Parquet, read by the next step
    assert report["cached"] == 3
