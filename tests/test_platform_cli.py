"""Driver-side input handling without Ray or a store: the command line (platform.options), where the
records go and whether servers answer (platform.stores), ``--list``/``--show`` (platform.describe) and
fitting trials to a cluster (platform.cluster, with hand-made Cluster values)."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from platform.cluster import Cluster, check_fits, default_concurrency
from platform.describe import listing, show
from platform.options import SearchRequest, UsageError, parse_request, read_config_file
from platform.stores import Stores, check_reachable, resolve_stores, resolve_tracking_uri
from search_spaces import list_studies, load_study

STUDY = "teanet_masks"
SMOKE = [STUDY, "--budget", "smoke"]


# --- platform.options ---------------------------------------------------------------------------
def test_list_and_show_modes():
    assert parse_request(["--list"]) == "list"
    assert parse_request([STUDY, "--show"]) == f"show:{STUDY}"


def test_defaults_of_a_plain_request():
    request = parse_request([STUDY])
    assert isinstance(request, SearchRequest)
    study = load_study(STUDY)
    assert request.study is study
    assert request.budget == study.default_budget
    assert request.trials is None and request.fixed == {}
    assert request.scheduler == "asha" and request.cpus_per_trial == 1.0
    assert request.gpus_per_trial is None and request.max_concurrent is None
    assert request.resume is None and request.reproduce is False and request.repeats == 1


def test_flags_land_in_the_request():
    request = parse_request([*SMOKE, "--trials", "7", "--max-concurrent", "3", "--cpus-per-trial", "0.5",
                             "--gpus-per-trial", "0.25", "--scheduler", "fifo", "--address", "10.0.0.1:6379",
                             "--tracking-uri", "http://mlflow:5000", "--optuna-storage", "sqlite:///o.db",
                             "--storage", "/tmp/ray", "--seed", "11", "--time-budget", "60"])
    assert (request.budget, request.trials, request.max_concurrent) == ("smoke", 7, 3)
    assert (request.cpus_per_trial, request.gpus_per_trial, request.scheduler) == (0.5, 0.25, "fifo")
    assert request.address == "10.0.0.1:6379" and request.tracking_uri == "http://mlflow:5000"
    assert request.optuna_storage == "sqlite:///o.db" and request.storage == "/tmp/ray"
    assert request.seed == 11 and request.time_budget_s == 60.0


def test_resume_latest_or_by_id_and_reproduce_with_repeats():
    assert parse_request([*SMOKE, "--resume"]).resume == "latest"
    assert parse_request([*SMOKE, "--resume", "teanet_masks-smoke-x"]).resume == "teanet_masks-smoke-x"
    request = parse_request([*SMOKE, "--reproduce", "--repeats", "3"])
    assert request.reproduce and request.repeats == 3


def test_set_fixes_typed_keys():
    request = parse_request([*SMOKE, "--set", "loss.gamma=0.5", "--set", "mask.scheme=MS3",
                             "--set", "train.epochs=4"])
    assert request.fixed == {"loss.gamma": 0.5, "mask.scheme": "MS3", "train.epochs": 4}
    assert isinstance(request.fixed["train.epochs"], int)


@pytest.mark.parametrize(("argv", "says"), [
    ([], "no study given; known studies: hed_architectures, hed_bins, teanet_baselines, teanet_gamma, "
         "teanet_masks, teanet_synthetic"),
    (["nope"], "unknown study 'nope'"),
    ([*SMOKE, "--set", "loss.gama=0.5"], "unknown config key 'loss.gama'; known keys:"),
    ([*SMOKE, "--set", "loss.gamma=2"], "config key 'loss.gamma': expected a number in (0, 1)"),
    ([*SMOKE, "--set", "mask.scheme=MS9"], "config key 'mask.scheme': expected one of"),
    ([*SMOKE, "--set", "loss.gamma"], "--set expects key=value"),
    ([*SMOKE, "--set", "mask.tau_low=0.8", "--set", "mask.tau_high=0.6"],
     "'mask.tau_low': expected less than"),
    ([STUDY, "--budget", "huge"], "--budget 'huge': expected one of smoke, quick, paper"),
    ([*SMOKE, "--trials", "0"], "--trials 0: expected a positive number"),
    ([*SMOKE, "--max-concurrent", "-1"], "--max-concurrent -1"),
    ([*SMOKE, "--time-budget", "0"], "--time-budget 0"),
    ([*SMOKE, "--cpus-per-trial", "0"], "--cpus-per-trial 0.0"),
    ([*SMOKE, "--gpus-per-trial", "-1"], "--gpus-per-trial -1.0: expected 0 or more"),
    ([*SMOKE, "--gpus-per-trial", "1.5"], "above 1, expected a whole number"),
    ([*SMOKE, "--repeats", "2"], "--repeats applies to --reproduce"),
    ([*SMOKE, "--resume", "--reproduce"], "cannot be combined with --reproduce"),
])
def test_bad_input_is_one_usage_error(argv, says):
    with pytest.raises(UsageError) as caught:
        parse_request(argv)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_whole_gpus_above_one_are_fine():
    assert parse_request([*SMOKE, "--gpus-per-trial", "2"]).gpus_per_trial == 2.0


def test_unknown_option_exits_2_through_argparse(capsys):
    with pytest.raises(SystemExit) as caught:
        parse_request([*SMOKE, "--no-such-flag"])
    assert caught.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_config_file_flat_nested_and_export_forms(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("mask.scheme: MS4\nloss.gamma: 0.4\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("mask:\n  scheme: MS4\nloss:\n  gamma: 0.4\n")
    export = tmp_path / "export.yaml"
    export.write_text("study: teanet_masks\ntrial: trial-0002\nval_accuracy: 0.9\n"
                      "config:\n  mask.scheme: MS4\n  loss: {gamma: 0.4}\n")
    for path in (flat, nested, export):
        assert read_config_file(path) == {"mask.scheme": "MS4", "loss.gamma": 0.4}, path.name
    assert read_config_file(_write(tmp_path / "empty.yaml", "")) == {}


def test_config_file_then_set_wins(tmp_path):
    path = _write(tmp_path / "c.yaml", "loss.gamma: 0.4\nmask.scheme: MS3\ntrain.epochs: 3\n")
    request = parse_request([*SMOKE, "--config", str(path), "--set", "loss.gamma=0.6"])
    assert request.fixed == {"loss.gamma": 0.6, "mask.scheme": "MS3", "train.epochs": 3}


@pytest.mark.parametrize(("content", "says"), [
    (None, "no such file"),
    ("mask: [unclosed\n", "not valid YAML (expected ',' or ']', but got '<stream end>' at line 2, column 1)"),
    ("a: b: c\n", "not valid YAML (mapping values are not allowed here at line 1, column 5)"),
    ("config:\n", "expected a mapping under 'config', got NoneType"),
    ("config: [1, 2]\n", "expected a mapping under 'config', got list"),
    ("- a\n- b\n", "expected a mapping of config keys, got list"),
    ("mask.schema: MS4\n", "unknown config key 'mask.schema'"),
    ("loss.gamma: high\n", "config key 'loss.gamma'"),
])
def test_bad_config_file_is_a_usage_error(tmp_path, content, says):
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as caught:
        parse_request([*SMOKE, "--config", str(path)])
    assert says in str(caught.value)
    assert "\n" not in str(caught.value), "one error line"


def _write(path, text):
    path.write_text(text)
    return path


# --- platform.stores ----------------------------------------------------------------------------
def test_tracking_uri_forms(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    assert resolve_tracking_uri(None, runs) == (f"sqlite:///{runs}/mlflow.db", f"{runs}/mlflow-artifacts")
    assert resolve_tracking_uri("https://mlflow.example:5000/", runs) == ("https://mlflow.example:5000", None)
    assert resolve_tracking_uri(f"sqlite:///{tmp_path}/a/m.db", runs) == (
        f"sqlite:///{tmp_path}/a/m.db", f"{tmp_path}/a/mlflow-artifacts")
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///rel.db", runs) == (
        f"sqlite:///{tmp_path}/rel.db", f"{tmp_path}/mlflow-artifacts")
    assert resolve_tracking_uri("records", runs) == (
        f"sqlite:///{tmp_path}/records/mlflow.db", f"{tmp_path}/records/mlflow-artifacts")


def test_tracking_uri_rejects_a_file_and_other_schemes(tmp_path):
    file = _write(tmp_path / "notadir", "")
    with pytest.raises(UsageError, match="expected a directory, found a file"):
        resolve_tracking_uri(str(file), tmp_path)
    with pytest.raises(UsageError, match=r"expected http\(s\)://, sqlite:/// or a directory"):
        resolve_tracking_uri("ftp://somewhere", tmp_path)


def test_resolve_stores_defaults_under_runs(tmp_path):
    stores = resolve_stores(parse_request(SMOKE), cwd=tmp_path)
    runs = tmp_path.resolve() / "runs"
    assert stores == Stores(f"sqlite:///{runs}/mlflow.db", f"{runs}/mlflow-artifacts",
                            f"sqlite:///{runs}/optuna.db", f"{runs}/ray")
    assert not runs.exists(), "resolving creates nothing"


def test_resolve_stores_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    request = parse_request([*SMOKE, "--optuna-storage", "postgresql://db/optuna", "--storage", "rayres"])
    stores = resolve_stores(request, cwd=tmp_path)
    assert stores.optuna_url == "postgresql://db/optuna"
    assert stores.ray_storage == str(tmp_path / "rayres"), "Tune needs an absolute path"
    request = parse_request([*SMOKE, "--storage", "s3://bucket/ray"])
    assert resolve_stores(request, cwd=tmp_path).ray_storage == "s3://bucket/ray"
    with pytest.raises(UsageError, match="expected a database URL"):
        resolve_stores(parse_request([*SMOKE, "--optuna-storage", "optuna.db"]), cwd=tmp_path)


def test_describe_names_each_store_and_how_to_browse():
    local = Stores("sqlite:////r/mlflow.db", "/r/mlflow-artifacts", "sqlite:////r/optuna.db", "/r/ray")
    lines = local.describe()
    assert len(lines) == 4
    assert lines[0].startswith("MLflow store:") and "sqlite:////r/mlflow.db" in lines[0]
    assert lines[1].startswith("Optuna storage:") and "optuna-dashboard sqlite:////r/optuna.db" in lines[1]
    assert lines[2].startswith("Ray results:") and "/r/ray" in lines[2]
    assert lines[3].endswith("mlflow ui --backend-store-uri sqlite:////r/mlflow.db")
    server = Stores("http://mlflow:5000", None, "sqlite:////r/optuna.db", "/r/ray")
    assert server.describe()[3].endswith("open http://mlflow:5000 in a browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stores(tmp_path, tracking_uri: str | None = None) -> Stores:
    return Stores(tracking_uri or f"sqlite:///{tmp_path}/runs/mlflow.db", None,
                  f"sqlite:///{tmp_path}/runs/optuna.db", str(tmp_path / "ray"))


def test_local_stores_that_can_be_created_pass(tmp_path):
    check_reachable(parse_request(SMOKE), _stores(tmp_path))
    check_reachable(parse_request([*SMOKE, "--address", "auto"]), _stores(tmp_path))
    assert not (tmp_path / "runs").exists()


def test_store_under_a_file_cannot_be_created(tmp_path):
    blocker = _write(tmp_path / "file", "")
    with pytest.raises(UsageError, match="cannot create a store in"):
        check_reachable(parse_request(SMOKE), _stores(tmp_path, f"sqlite:///{blocker}/sub/mlflow.db"))


def test_silent_tracking_server_is_a_usage_error(tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(UsageError, match=f"--tracking-uri {uri}: no MLflow server answers"):
        check_reachable(parse_request(SMOKE), _stores(tmp_path, uri))


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_silent_ray_address_is_a_usage_error(tmp_path, form):
    address = form.format(port=_free_port())
    with pytest.raises(UsageError, match=f"--address {address}: no Ray cluster answers at 127.0.0.1"):
        check_reachable(parse_request([*SMOKE, "--address", address]), _stores(tmp_path))


def test_ray_address_without_host_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="expected host:port"):
        check_reachable(parse_request([*SMOKE, "--address", ":6379"]), _stores(tmp_path))


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (the http.server API)
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    """A stand-in tracking server on 127.0.0.1 answering /health; yields (uri, handler class)."""
    handler = type("Handler", (_Health,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()
    thread.join()


def test_tracking_server_that_answers_passes(tmp_path, health_server):
    uri, _ = health_server
    check_reachable(parse_request(SMOKE), _stores(tmp_path, uri))


def test_tracking_server_that_answers_an_error_is_a_usage_error(tmp_path, health_server):
    uri, handler = health_server
    handler.status = 503
    with pytest.raises(UsageError, match=f"--tracking-uri {uri}"):
        check_reachable(parse_request(SMOKE), _stores(tmp_path, uri))


# --- platform.describe --------------------------------------------------------------------------
def test_show_lists_keys_objective_budgets_grid_and_branches():
    study = load_study(STUDY)
    text = show(study)
    assert text.startswith(f"{STUDY} — ")
    assert "objective: max val_accuracy" in text
    for key in study.fields:
        assert f"\n  {key} = " in text, key
    for name, budget in study.budgets.items():
        assert f"\n  {name}" in text and f"{budget.trials} trials" in text, name
    assert "quick (default)" in text
    assert f"reproduction grid ({len(study.reproduction)} rows, --reproduce)" in text
    assert len(study.reproduction) == 14
    for row in study.reproduction:
        assert f"\n  {row.label}: " in text, row.label
    assert "  mask.scheme: one of MS1, MS2, MS3, MS4, MS5" in text
    branches = {line.split(":")[0].strip(): line for line in text.splitlines()
                if line.startswith("    when mask.scheme = ")}
    assert len(branches) == 5
    assert "mask.tau float [0.01, 0.99]" in branches["when mask.scheme = MS3"]
    assert "mask.tau_low" not in branches["when mask.scheme = MS3"]
    assert "mask.segments int [2, 4]" in branches["when mask.scheme = MS5"]
    assert "mask.a " not in branches["when mask.scheme = MS4"]
    assert all("loss.gamma float [0.05, 0.95]" in line for line in branches.values())


def test_listing_names_every_study():
    names = [line.split()[0] for line in listing().splitlines()]
    assert names == list_studies() and STUDY in names


# --- platform.cluster ---------------------------------------------------------------------------
def _cluster(cpus=8.0, gpus=0.0, node_cpus=None, node_gpus=None) -> Cluster:
    return Cluster("local", cpus, gpus, node_cpus if node_cpus is not None else cpus,
                   node_gpus if node_gpus is not None else gpus)


@pytest.mark.parametrize(("cluster", "cpus", "gpus", "expected"), [
    (_cluster(8), 1, 0, 8),
    (_cluster(8), 3, 0, 2),
    (_cluster(8), 0.5, 0, 16),
    (_cluster(8, 2), 1, 0.5, 4),  # GPUs bound it
    (_cluster(8, 2), 1, 1, 2),
    (_cluster(2, 4), 1, 0.25, 2),  # CPUs bound it
    (_cluster(0.5), 1, 0, 1),  # never below one
])
def test_default_concurrency(cluster, cpus, gpus, expected):
    assert default_concurrency(cluster, cpus, gpus) == expected


def test_check_fits_against_the_largest_node():
    two_nodes = _cluster(cpus=16, gpus=2, node_cpus=8, node_gpus=1)
    check_fits(two_nodes, 8, 1)
    check_fits(two_nodes, 0.5, 0.25)
    with pytest.raises(UsageError, match="--cpus-per-trial 12: the cluster's largest node has 8 CPUs"):
        check_fits(two_nodes, 12, 0)
    with pytest.raises(UsageError, match="--gpus-per-trial 2: the cluster's largest node has 1 GPUs"):
        check_fits(two_nodes, 1, 2)
    with pytest.raises(UsageError, match="--gpus-per-trial 1: the cluster's largest node has 0 GPUs"):
        check_fits(_cluster(8), 1, 1)


def test_a_study_of_table_cells_runs_fifo_unless_asked_otherwise():
    assert parse_request(["teanet_synthetic", "--budget", "smoke"]).scheduler == "fifo"
    assert parse_request(["teanet_baselines", "--budget", "smoke"]).scheduler == "fifo"
    assert parse_request(["teanet_baselines", "--budget", "smoke", "--scheduler", "asha"]).scheduler == "asha"
    assert parse_request(["teanet_masks", "--budget", "smoke"]).scheduler == "asha"


def test_show_lists_every_searched_key_of_a_space_without_branches():
    shown = show(load_study("teanet_gamma"))
    for key in ("loss.gamma", "mask.copies", "train.training"):
        assert key in shown, key
