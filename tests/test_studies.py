"""One conformance suite that every study under search_spaces/ runs through (optuna's pytest_samplers
idea): add a study module, get these tests. Then what is particular to teanet_masks."""

import importlib

import optuna
import pytest

from search_spaces import GridRow, Study, UnknownStudyError, list_studies, load_study, read_reference

DRAWS = 200
STUDIES = list_studies()

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample_params(study: Study, draws: int = DRAWS, seed: int = 0) -> list[dict]:
    """The params of ``draws`` random points of the study's define-by-run space, nothing fixed."""
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    points = []
    for _ in range(draws):
        trial = sampler.ask()
        study.define_space(trial, {})
        points.append(dict(trial.params))
    return points


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict]]:
    """Random draws of every study's space, drawn once per test module."""
    return {name: sample_params(load_study(name)) for name in STUDIES}


def test_there_is_at_least_one_study():
    assert "teanet_masks" in STUDIES


# --- conformance: every study --------------------------------------------------------------------

@pytest.mark.parametrize("name", STUDIES)
def test_study_loads_and_is_named_after_its_module(name):
    study = load_study(name)
    assert isinstance(study, Study)
    assert study.name == name
    assert study is importlib.import_module(f"search_spaces.{name}").STUDY


@pytest.mark.parametrize("name", STUDIES)
def test_every_budget_gives_a_complete_valid_config(name):
    study = load_study(name)
    assert study.default_budget in study.budgets
    for budget in study.budgets:
        config = study.config_for(budget)
        assert set(config) == set(study.fields), budget
        study.check_config(config)
        assert config[study.epochs_key] >= 1


@pytest.mark.parametrize("name", STUDIES)
def test_a_complete_config_comes_back_through_config_file(name, tmp_path):
    """What export writes (every key of a trial's config) is what --config takes back, for every budget."""
    import yaml

    from platform.options import parse_request

    study = load_study(name)
    for budget in study.budgets:
        config = study.config_for(budget)
        path = tmp_path / f"{budget}.yaml"
        path.write_text(yaml.safe_dump(config))
        assert parse_request([name, "--config", str(path), "--budget", budget]).fixed == config, budget


@pytest.mark.parametrize("name", STUDIES)
def test_smoke_budget_exists_and_runs_trials(name):
    budgets = load_study(name).budgets
    assert "smoke" in budgets and budgets["smoke"].trials >= 1


@pytest.mark.parametrize("name", STUDIES)
def test_objective_is_a_validation_metric(name):
    objective = load_study(name).objective
    # HED's confidence_score: the confidence with ties broken by time (its protocol has no validation set)
    assert objective.metric.startswith(("val_", "confidence"))
    assert objective.mode in {"max", "min"}


@pytest.mark.parametrize("name", STUDIES)
def test_every_sampled_point_is_a_feasible_config(name, samples):
    study = load_study(name)
    for params in samples[name]:
        assert params, "define_space suggested nothing"
        assert set(params) <= set(study.fields), params
        study.config_for("smoke", params)  # runs the study's check_config: ConfigError if infeasible


@pytest.mark.parametrize("name", STUDIES)
def test_fixed_keys_are_never_suggested(name, samples):
    study = load_study(name)
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for params in samples[name][:50]:
        fixed = dict(list(params.items())[::2])  # every other key of a feasible point, as --set would
        trial = sampler.ask()
        study.define_space(trial, fixed)
        assert not set(trial.params) & set(fixed), fixed


@pytest.mark.parametrize("name", STUDIES)
def test_reproduction_rows_are_valid_configs(name):
    study = load_study(name)
    for row in study.reproduction:
        assert isinstance(row, GridRow) and row.label
        study.config_for("smoke", row.config)  # checked, as a reproduction run would be
        assert set(row.reference) <= set(study.reference_columns), row.label
    labels = [row.label for row in study.reproduction]
    assert len(labels) == len(set(labels))


def test_unknown_study_lists_the_known_ones():
    with pytest.raises(UnknownStudyError) as info:
        load_study("nope")
    assert "'nope'" in str(info.value)
    assert all(name in str(info.value) for name in STUDIES)


def test_private_modules_and_reference_are_not_studies():
    assert not {"_study", "reference"} & set(STUDIES)


# --- teanet_masks --------------------------------------------------------------------------------

# Each scheme's own keys (TeaNet §3.3, Table 4); anything else under mask.* is shared or not searched.
SCHEME_KEYS = {
    "MS1": {"mask.a", "mask.tau"},
    "MS2": {"mask.a", "mask.tau_low", "mask.tau_high"},
    "MS3": {"mask.tau"},
    "MS4": {"mask.tau_low", "mask.tau_high"},
    "MS5": {"mask.segments", "mask.segment_tau_low", "mask.segment_tau_high",
            "mask.tau_low", "mask.tau_high"},
}
ALL_SCHEME_KEYS = set().union(*SCHEME_KEYS.values())


def test_teanet_masks_searches_each_schemes_keys_only_with_that_scheme(samples):
    seen = set()
    for params in samples["teanet_masks"]:
        scheme = params["mask.scheme"]
        seen.add(scheme)
        assert set(params) & ALL_SCHEME_KEYS == SCHEME_KEYS[scheme], params
    assert seen == set(SCHEME_KEYS)  # 200 draws reach every scheme


def test_teanet_masks_fixed_scheme_is_respected():
    study = load_study("teanet_masks")
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = sampler.ask()
        study.define_space(trial, {"mask.scheme": "MS5", "loss.gamma": 0.5})
        assert "mask.scheme" not in trial.params and "loss.gamma" not in trial.params
        assert set(trial.params) & ALL_SCHEME_KEYS == SCHEME_KEYS["MS5"]


def test_teanet_masks_reproduces_the_14_rows_of_table4():
    rows = load_study("teanet_masks").reproduction
    published = read_reference("teanet_table4_masks")
    assert len(rows) == len(published) == 14
    for row, table in zip(rows, published, strict=True):
        assert row.label == f"{table['scheme']} {table['setting']}"
        assert row.config["mask.scheme"] == table["scheme"]
        assert row.reference == {column: float(table[column]) for column in row.reference}
        assert set(row.reference) == set(table) - {"scheme", "setting"}


def test_teanet_masks_reproduction_trains_like_the_published_code():
    # MODELS.md A5: the repo's LeNet feeds softmax outputs to cross-entropy; tuning uses logits.
    study = load_study("teanet_masks")
    for row in study.reproduction:
        assert study.grid_config("smoke", row, {})["model.classifier_output"] == "softmax", row.label
    assert study.config_for("quick")["model.classifier_output"] == "logits"
