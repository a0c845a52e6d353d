"""Config files mean the same from any working directory; input settings are checked when read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipelines.cli import build_parser
from pipelines.config import DEFAULT_CONFIGS, ConfigError, ScoreConfig, TrainConfig, UpliftConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def test_relative_paths_in_a_config_are_the_files_not_the_working_directorys(tmp_path, monkeypatch):
    conf = tmp_path / "jobs" / "nightly"
    conf.mkdir(parents=True)
    (conf / "score.yaml").write_text("data: ../../extracts/latest\nout: scores\n")
    monkeypatch.chdir("/")  # as cron runs it
    config = load_config(conf / "score.yaml", None, ScoreConfig)
    assert config.data == str(tmp_path / "extracts" / "latest")
    assert config.out == str(conf / "scores")


def test_absolute_paths_uris_words_and_flags_are_kept_as_given(tmp_path, monkeypatch):
    (tmp_path / "train.yaml").write_text("data: /srv/extracts\ntruth: auto\n")
    (tmp_path / "score.yaml").write_text("data: s3a://bucket/extracts\nout: out\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(tmp_path / "train.yaml").data == "/srv/extracts"
    assert load_config(tmp_path / "train.yaml").truth == "auto"
    score = load_config(Path("score.yaml"), {"out": "flag/out"}, ScoreConfig)  # a flag is the caller's path
    assert score.data == "s3a://bucket/extracts" and score.out == "flag/out"


def test_the_default_configs_are_found_from_any_working_directory(monkeypatch):
    monkeypatch.chdir("/")
    for command, name in (("train", "train.yaml"), ("score", "score.yaml")):
        args = build_parser().parse_args([command] + (["--as-of", "2026-07-01"] if command == "score" else []))
        assert args.config == DEFAULT_CONFIGS / name and args.config.is_file()
    assert load_config(DEFAULT_CONFIGS / "train.yaml").data == str(REPO / "data" / "synthetic")
    assert load_config(DEFAULT_CONFIGS / "score.yaml", None, ScoreConfig).out == str(REPO / "data" / "scores")
    assert load_config(DEFAULT_CONFIGS / "telco.yaml").data == str(REPO / "data" / "telco")


def _leaves(section: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# What the shipped files set for the default synthetic data only: where it is, its dates, and the non-churner sampling
# that pays on 200,000 stacked rows (a 7,000-row extract keeps every row).
DATA_SPECIFIC = {"data", "end_date", "as_of.start", "as_of.end", "out", "monitor.out", "recover.out"}
DATA_SPECIFIC_TRAIN = DATA_SPECIFIC | {"model.negative_sample_rate"}


@pytest.mark.parametrize(
    ("kind", "name", "specific"),
    [
        (TrainConfig, "train.yaml", DATA_SPECIFIC_TRAIN),
        (ScoreConfig, "score.yaml", DATA_SPECIFIC),
        (UpliftConfig, "uplift.yaml", DATA_SPECIFIC),
    ],
)
def test_a_config_that_leaves_a_key_out_gets_the_shipped_files_value(kind, name, specific):
    """One place for each default: a key absent from a user's file (telco.yaml sets no search) means what the
    shipped file says, not a second, older value in the code (30 trials and two threads ran Telco 4x slower)."""
    code = _leaves(dataclasses.asdict(load_config(None, kind=kind)))
    shipped = _leaves(dataclasses.asdict(load_config(DEFAULT_CONFIGS / name, kind=kind)))
    differ = {k for k in code.keys() | shipped.keys() if code.get(k, "absent") != shipped.get(k, "absent")}
    assert differ <= specific, {k: (code.get(k, "absent"), shipped.get(k, "absent")) for k in differ - specific}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("input:\n  encoding: klingon-8\n", "input.encoding: 'klingon-8' is not an encoding"),
        ("input:\n  timezone: Mars/Olympus\n", "input.timezone: 'Mars/Olympus' is not an IANA time zone"),
        ("- just\n- a list\n", "expected a mapping of keys"),
    ],
)
def test_bad_input_settings_are_refused_by_key(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


def test_a_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_the_shipped_recover_section_is_the_measurements_defaults():
    """Recover's settings moved into score.yaml without changing what it measures: the file's section is the
    dataclass's defaults, and those are the defaults of the measurement itself."""
    import dataclasses
    import inspect

    from models.value import measure_recovery
    from pipelines.config import RecoverConfig

    shipped = load_config(DEFAULT_CONFIGS / "score.yaml", None, ScoreConfig).recover
    assert shipped.out == str(REPO / "data" / "recovery")
    assert shipped == dataclasses.replace(RecoverConfig(), out=shipped.out)
    measured = inspect.signature(measure_recovery).parameters
    assert (shipped.bootstrap.resamples, shipped.bootstrap.confidence, shipped.bootstrap.seed) == (
        measured["n_boot"].default,
        measured["level"].default,
        measured["seed"].default,
    )
    assert (shipped.min_control_customers, shipped.min_control_churners) == (
        measured["min_control"].default,
        measured["min_churners"].default,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("recover:\n  resamples: 100\n", r"recover: unknown key\(s\) \['resamples'\]"),
        ("recover:\n  bootstrap:\n    confidence: 95\n", "recover.bootstrap.confidence: expected a share"),
        ("recover:\n  label: churned\n", "recover.label: 'churned' is not one of"),
        ("recover:\n  tiers: yes please\n", "recover.tiers: expected true or false"),
        ("risk_tiers:\n  high: 0.9\n  medium: 0.2\n", "risk_tiers: high \\+ medium"),
        ("monitor:\n  min_roc_auc: 80\n", "monitor.min_roc_auc: expected a number between 0 and 1"),
        ("drift:\n  significance: 0\n", "drift.significance: expected a probability"),
        ("drift:\n  min_importance: 2\n", r"drift.min_importance: expected a share in \[0, 1\)"),
        ("drift:\n  mean_change: -0.1\n", "drift.mean_change: expected a relative change above 0"),
        ("drift:\n  feed_drop: 1.5\n", "drift.feed_drop: expected a relative fall between 0 and 1"),
        ("recover:\n  power: 1\n", "recover.power: expected a share between 0 and 1"),
    ],
)
def test_the_recover_section_is_typed_and_strict(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "s.yaml", None, ScoreConfig)


def test_dotted_overrides_reach_nested_sections_and_keep_the_rest(tmp_path):
    (tmp_path / "s.yaml").write_text("recover:\n  bootstrap:\n    resamples: 500\n")
    config = load_config(tmp_path / "s.yaml", {"recover.bootstrap.seed": 3, "recover.tiers": False}, ScoreConfig)
    assert config.recover.bootstrap.resamples == 500 and config.recover.bootstrap.seed == 3
    assert config.recover.tiers is False and config.recover.horizon_days == 90
