"""A node lost in the middle of a search: a two-node cluster on this host (``ray start --head`` and
``ray start --address``, each in a temp dir of its own), a HED search on a user's files (read by the
driver, carried to the other node by Ray's object store) with ``--max-failures 2``; the worker node's
raylet and workers are killed while a trial runs there. The trial is retried on the surviving node from
its checkpoint and stays one MLflow run, no epoch logged twice, nothing left RUNNING; and the MLflow store
is opened by the driver alone, never by a worker (sampled with psutil all along the search)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e_support import (
    SMOKE,
    client_for,
    cluster_nodes,
    experiment_runs,
    join_ray_node,
    own_auth_token,
    start_ray_cluster,
    start_search,
    stop_ray_cluster,
    write_xy_series,
)

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

# Long enough that the watcher (a poll every 1-2 s; results are written once a second) sees a trial mid-way
# on the worker and kills its node (at 12 epochs a trial once ended unseen); short enough for a test.
EPOCHS = 40
SEARCH_TIMEOUT_S = 600


@pytest.fixture
def two_nodes():
    """(address, head temp dir, worker temp dir, worker node id); both nodes stopped at the end."""
    with own_auth_token():
        address, head_temp = start_ray_cluster(num_cpus=1)
        worker_temp = None
        try:
            worker_temp = join_ray_node(address, num_cpus=1)
            nodes = cluster_nodes(address)
            (worker,) = [n["NodeID"] for n in nodes if n["Alive"]
                         and "node:__internal_head__" not in n["Resources"]]
            yield address, head_temp, worker_temp, worker
        finally:
            if worker_temp:
                stop_ray_cluster(worker_temp)
            stop_ray_cluster(head_temp)


def _raylet(temp: str) -> psutil.Process:
    def is_ours(args: list[str]) -> bool:
        return bool(args) and args[0].endswith("/raylet") and temp in " ".join(args)

    (raylet,) = [p for p in psutil.process_iter(["cmdline"]) if is_ours(p.info["cmdline"] or [])]
    return raylet


def _kill_node(temp: str) -> list[int]:
    """SIGKILL a node: its raylet, everything the raylet started (workers), everything naming its temp dir."""
    raylet = _raylet(temp)
    doomed = {raylet, *raylet.children(recursive=True)}
    doomed |= {p for p in psutil.process_iter(["cmdline"]) if temp in " ".join(p.info["cmdline"] or [])}
    for process in doomed:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    return sorted(p.pid for p in doomed)


def _holders(path: str) -> set[int]:
    """Processes that have ``path`` open now."""
    found = set()
    for process in psutil.process_iter():
        try:
            if any(f.path == path for f in process.open_files()):
                found.add(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _trial_on(workdir: Path, node: str, min_epochs: int) -> str | None:
    """The run id of a trial running on ``node`` that has logged ``min_epochs`` epochs (a checkpoint)."""
    client = client_for(workdir)
    experiment = client.get_experiment_by_name("hed_architectures")
    if experiment is None:
        return None
    for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
        if run.data.tags.get("node_id") == node and run.data.metrics.get("epochs", 0) >= min_epochs:
            return run.info.run_id
    return None


def _ray_results(workdir: Path, trial_id: str) -> list[dict]:
    """Every result Tune saved for the trial (result.json, one JSON per line), restarts included."""
    (path,) = (workdir / "runs" / "ray").glob(f"*/trial_{trial_id}/result.json")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_trial_whose_node_dies_finishes_on_the_other_node_from_its_checkpoint(two_nodes, workdir):
    from spectra.ramp import RampSettings, simulate_ramp

    address, head_temp, worker_temp, worker = two_nodes
    ramp = simulate_ramp(RampSettings(spectra=80, points=512, transition=42, seed=3))
    folder = workdir / "series"
    write_xy_series(folder, ramp.intensity, ramp.two_theta)
    store = str(workdir / "runs" / "mlflow.db")
    me = os.getpid()

    log = (workdir / "search.log").open("w")
    driver = start_search([*SMOKE, "hed_architectures", "--trials", "2", "--max-concurrent", "2",
                           "--scheduler", "fifo", "--max-failures", "2", "--set", f"data.path={folder}",
                           "--set", "data.transition=42", "--set", "model.name=cnn",
                           "--set", f"train.epochs={EPOCHS}"], workdir, address, stdout=log)
    holders: set[int] = set()
    killed: list[int] = []
    interrupted = None
    deadline = time.monotonic() + SEARCH_TIMEOUT_S
    try:
        while driver.poll() is None and time.monotonic() < deadline:
            holders |= _holders(store) - {me}
            if interrupted is None:
                interrupted = _trial_on(workdir, worker, min_epochs=2)
                if interrupted is not None:
                    killed = _kill_node(worker_temp)
            time.sleep(0.5)
    finally:
        if driver.poll() is None:
            driver.kill()
        log.close()
    output = (workdir / "search.log").read_text()
    assert driver.returncode == 0, output[-4000:]
    assert interrupted is not None and killed, "a trial ran on the worker node and the node was killed"

    # the store was opened by the driver and by no other process (no worker, no raylet)
    assert holders == {driver.pid}, (holders, driver.pid)

    client, parent, children = experiment_runs(workdir, "hed_architectures")
    assert parent.data.tags["max_failures"] == "2" and parent.info.status == "FINISHED"
    assert len(children) == 2, "the retried trial is still one MLflow run"
    assert {c.info.status for c in children} == {"FINISHED"}, "nothing left RUNNING"
    run = client.get_run(interrupted)
    tags = run.data.tags
    assert int(tags["retries"]) >= 1
    assert tags["node_ids"].split(",")[0] == worker and tags["node_id"] != worker, tags["node_ids"]
    steps = [m.step for m in client.get_metric_history(interrupted, "epochs")]
    assert sorted(steps) == list(range(1, EPOCHS + 1)), "every epoch logged once, up to the last"

    # Tune's own record: after the restart on the surviving node the trial went on from its checkpoint
    # (its first result there is beyond epoch 1), rather than training again from the start.
    results = _ray_results(workdir, tags["trial_id"])
    restarted = [r for r in results if r.get("node_id") != worker]
    assert restarted and restarted[0]["epochs"] > 1, [(r.get("node_id"), r["epochs"]) for r in results]
    print(f"node lost: retries={tags['retries']}, Tune results (node, epoch): "
          f"{[(r.get('node_id', '')[:6], r['epochs']) for r in results]}, store holders {holders}")
