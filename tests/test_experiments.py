"""The experiments (`bnnet experiment fig1|test-stats|lr-sweep`): short runs on digits and an MNIST subset.

The full runs (50,000 steps on MNIST) are commands in docs/experiments.md;
here every piece is checked on a few hundred steps, and the one longer run is
marked slow.
"""
from __future__ import annotations

import copy
import json
import os
import re
import sys

import numpy as np
import pytest

from bnnet.cli.main import main
from bnnet.data import load_dataset
from bnnet.experiments import (
    Fig1Settings, Recorder, RunningAverages, StatsSettings, SweepSettings, TrainingSettings, activation_input,
    build_network, diverged, percentiles, run_fig1, run_lr_sweep, run_test_stats, statistics_distance, train,
)
from bnnet.experiments.lr_sweep import split
from bnnet.experiments.plots import _figure
from bnnet.experiments.recording import band_drift, write_csv
from bnnet.experiments.test_stats import batch_statistics_accuracy, single_example_accuracy
from bnnet.losses import SoftmaxCrossEntropy
from bnnet.nn import mlp
from bnnet.training import History, evaluate


def strict_json(line: str) -> dict:
    """Parse one JSON line, refusing NaN/Infinity (the summary must be strict JSON)."""
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# -- recording ---------------------------------------------------------------

def test_activation_input_is_the_eval_mode_input_of_the_last_sigmoid(rng):
    model = mlp([6, 5, 4, 3], activation="sigmoid", dtype=np.float64, rng=1)
    model(rng.normal(size=(16, 6)))  # one training forward: the running statistics move away from 0 and 1
    x = rng.normal(size=(9, 6))
    first, bn1, _, second, bn2 = model.layers[:5]
    h = 1.0 / (1.0 + np.exp(-bn1.eval()(first(x))))
    expected = (second(h) - bn2.buffers["running_mean"]) / np.sqrt(bn2.buffers["running_var"] + bn2.eps)
    expected = expected * bn2.params["gamma"] + bn2.params["beta"]
    model.train()
    assert np.allclose(activation_input(model, x), expected, rtol=1e-12, atol=1e-12)
    assert model.training and all(layer.training for layer in model.layers)  # mode restored


def test_activation_input_names_the_missing_layer():
    model = mlp([4, 3, 2], activation="relu")
    with pytest.raises(ValueError, match=r"expected a Sequential with a Sigmoid layer number -1, got 0 Sigmoid"):
        activation_input(model, np.zeros((2, 4), np.float32))


def test_percentiles_are_numpys_linear_percentiles(rng):
    values = rng.normal(size=1001)
    assert percentiles(values) == pytest.approx(list(np.percentile(values, [15, 50, 85])), abs=0)


def test_recorder_records_accuracy_and_unit_percentiles_every_n_steps(digits, rng):
    model = build_network(TrainingSettings(init_std=0.1), digits.num_features, digits.num_classes, True)
    probe = digits.x_test[:50]
    recorder = Recorder(SoftmaxCrossEntropy(), digits.x_test, digits.y_test, probe, unit=7, every=3)
    for step in range(7):
        recorder(step, model)
    assert [r["step"] for r in recorder.records] == [0, 3, 6]
    loss, accuracy = evaluate(model, SoftmaxCrossEntropy(), digits.x_test, digits.y_test)
    record = recorder.records[-1]
    assert record["test_accuracy"] == accuracy and record["test_loss"] == pytest.approx(loss)
    unit_input = activation_input(model, probe)[:, 7]
    assert [record["p15"], record["p50"], record["p85"]] == percentiles(unit_input)


@pytest.mark.parametrize("kwargs, message", [
    ({"every": 0}, r"expected a recording interval >= 1 step, got 0"),
])
def test_recorder_rejects_bad_settings(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recorder(SoftmaxCrossEntropy(), digits.x_test, digits.y_test, digits.x_test, **kwargs)


def test_recorder_rejects_a_unit_outside_the_layer(digits):
    model = build_network(TrainingSettings(hidden=(5,)), digits.num_features, digits.num_classes, False)
    recorder = Recorder(SoftmaxCrossEntropy(), digits.x_test, digits.y_test, digits.x_test, unit=5)
    with pytest.raises(ValueError, match=r"expected a unit in 0\.\.4 of the last hidden layer, got 5"):
        recorder(0, model)


def test_band_drift_by_hand():
    # Two units; the reference is the first record at or after step 5 (step 10).
    at_0 = np.array([[9.0, 9.0], [9.0, 9.0], [9.0, 9.0]])
    at_10 = np.array([[-1.0, 0.0], [0.0, 1.0], [1.0, 4.0]])   # bands of width 2 and 4
    at_20 = np.array([[0.0, 0.0], [3.0, 1.0], [4.0, 2.0]])    # medians moved by 3 and 0
    assert np.allclose(band_drift([0, 10, 20], [at_0, at_10, at_20], start=5), [1.5, 0.0])
    with pytest.raises(ValueError, match=r"expected a record at or after step 30, got records up to step 20"):
        band_drift([0, 10, 20], [at_0, at_10, at_20], start=30)


def test_write_csv_refuses_no_rows(tmp_path):
    with pytest.raises(ValueError, match=r"expected at least one row to write to .*x\.csv, got none"):
        write_csv(tmp_path / "x.csv", [])


# -- settings ----------------------------------------------------------------

@pytest.mark.parametrize("cls, overrides, message", [
    (TrainingSettings, {"steps": 0}, r"expected steps >= 1, got 0"),
    (TrainingSettings, {"batch_size": 1}, r"expected batch_size >= 2 \(batch norm needs two examples\), got 1"),
    (TrainingSettings, {"hidden": ()}, r"expected at least one positive hidden size, got \(\)"),
    (TrainingSettings, {"init_std": 0.0}, r"expected init_std > 0, got 0\.0"),
    (TrainingSettings, {"optimizer": "lbfgs"}, r"expected optimizer in \(.*'sgd'.*\), got 'lbfgs'"),
    (TrainingSettings, {"lr": float("nan")}, r"expected a finite lr > 0, got nan"),
    (TrainingSettings, {"optimizer": "adam", "momentum": 0.9},
     r"momentum is an SGD setting, got momentum=0\.9 with optimizer='adam'; pass --optimizer sgd"),
    (Fig1Settings, {"record_every": 0}, r"expected record_every >= 1, got 0"),
    (Fig1Settings, {"probe_size": 0}, r"expected probe_size >= 1, got 0"),
    (Fig1Settings, {"unit": 100}, r"expected unit in 0\.\.99 \(the last hidden layer has 100 units\), got 100"),
    (StatsSettings, {"weights": (0.1, 1.5)}, r"expected weights in \(0, 1\], got \(0\.1, 1\.5\)"),
    (StatsSettings, {"test_batch_sizes": (0, 2)}, r"expected test batch sizes >= 1, got \(0, 2\)"),
    (StatsSettings, {"record_every": -1}, r"expected record_every >= 1, got -1"),
    (SweepSettings, {"lrs": (0.1, -1.0)}, r"expected finite learning rates > 0, got \(0\.1, -1\.0\)"),
    (SweepSettings, {"holdout": -5}, r"expected holdout >= 0 examples, got -5"),
])
def test_settings_errors_name_the_value(cls, overrides, message):
    with pytest.raises(ValueError, match=message):
        cls(**overrides).validate()


def test_unused_settings_are_neither_flags_nor_saved():
    assert "lr" not in SweepSettings.field_names() and "lr" not in SweepSettings().as_dict()
    assert "new_batch_weight" not in StatsSettings.field_names()
    assert Fig1Settings().as_dict()["hidden"] == [100, 100, 100]


# -- the network -------------------------------------------------------------

def test_both_fig1_networks_start_from_the_same_weights():
    settings = TrainingSettings()
    plain = build_network(settings, 784, 10, batch_norm=False)
    normalized = build_network(settings, 784, 10, batch_norm=True)
    plain_weights = [layer.params["weight"] for layer in plain.layers if "weight" in layer.params]
    bn_weights = [layer.params["weight"] for layer in normalized.layers if "weight" in layer.params]
    assert [w.shape for w in plain_weights] == [(100, 784), (100, 100), (100, 100), (10, 100)]
    assert all(np.array_equal(a, b) for a, b in zip(plain_weights, bn_weights))
    assert float(np.std(plain_weights[0])) == pytest.approx(0.01, rel=0.02)
    assert [type(layer).__name__ for layer in normalized.layers[:3]] == ["Linear", "BatchNorm", "Sigmoid"]
    assert not normalized.layers[0].has_bias and plain.layers[0].has_bias


def test_diverged_on_a_stopped_history_or_a_non_finite_parameter():
    model = mlp([3, 2], batch_norm=False)
    assert not diverged(model, History())
    assert diverged(model, History(stopped="stopped at step 3: the training loss is nan"))
    model.layers[0].params["weight"][0, 0] = np.inf
    assert diverged(model, History())


# -- running averages --------------------------------------------------------

def test_running_averages_equal_those_of_networks_trained_with_each_weight(rng):
    """One run with new_batch_weight=1 gives, for every w, the running statistics of a run with w."""
    x = rng.normal(size=(240, 6))
    y = rng.integers(0, 3, size=240)
    settings = TrainingSettings(steps=25, batch_size=20, hidden=(5, 4), init_std=0.3, lr=0.5)

    def network(weight):
        return mlp([6, 5, 4, 3], activation="sigmoid", init="small_gaussian", init_std=0.3, rng=3,
                   dtype=np.float64, batch_norm_options={"new_batch_weight": weight})

    tracked = network(1.0)
    averages = RunningAverages(tracked, [0.05, 0.3])
    train(tracked, settings, x, y, on_step=averages)
    for weight in (0.05, 0.3):
        reference = network(weight)
        train(reference, settings, x, y)
        # Running statistics never enter training, so the weights are bit-identical...
        assert all(np.array_equal(a, b) for a, b in zip(tracked.parameters().values(), reference.parameters().values()))
        # ...and the averages are the reference's buffers (to float rounding of the extra step).
        for name, (mean, var) in averages.statistics(weight).items():
            layer = reference.layers[int(name)]
            assert np.allclose(mean, layer.buffers["running_mean"], rtol=1e-12, atol=1e-14)
            assert np.allclose(var, layer.buffers["running_var"], rtol=1e-12, atol=1e-14)
        installed = averages.install(copy.deepcopy(tracked), weight)
        assert np.allclose(installed.predict(x), reference.predict(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("build, weights, message", [
    (lambda: mlp([3, 2], batch_norm=False), [0.1], r"expected a network with at least one BatchNorm layer, got none"),
    (lambda: mlp([3, 4, 2]), [0.1],
     r"expected BatchNorm 1 to store the last batch's statistics \(new_batch_weight=1\.0.*got new_batch_weight=0\.1"),
    (lambda: mlp([3, 4, 2], batch_norm_options={"new_batch_weight": 1.0}), [0.0], r"expected every weight in \(0, 1\], got 0\.0"),
])
def test_running_averages_refuse_what_they_cannot_track(build, weights, message):
    with pytest.raises(ValueError, match=message):
        RunningAverages(build(), weights)


def test_running_averages_name_the_weights_they_hold():
    averages = RunningAverages(mlp([3, 4, 2], batch_norm_options={"new_batch_weight": 1.0}), [0.1])
    with pytest.raises(KeyError, match=r"no running average with weight 0\.5; the weights are \[0\.1\]"):
        averages.statistics(0.5)


def test_statistics_distance_by_hand():
    mean_pop, var_pop = np.array([0.0, 1.0]), np.array([4.0, 1.0])
    assert statistics_distance(mean_pop, var_pop, mean_pop, var_pop, eps=1e-5) == (0.0, 0.0)
    # shift: (1 - 0) / 2 = 0.5 and (1 - 1) / 1 = 0 -> rms = sqrt(0.125); scale: sqrt(16/4) - 1 = 1 and 0.
    shift, scale = statistics_distance(np.array([1.0, 1.0]), np.array([16.0, 1.0]), mean_pop, var_pop, eps=0.0)
    assert shift == pytest.approx(np.sqrt(0.125)) and scale == pytest.approx(np.sqrt(0.5))


# -- fig1 --------------------------------------------------------------------

def test_fig1_short_run_on_digits(digits, tmp_path):
    settings = Fig1Settings(steps=200, record_every=50, probe_size=100)
    lines = []
    result = run_fig1(digits, settings, log=lines.append)
    runs = result["networks"]
    assert set(runs) == {"without_bn", "with_bn"}
    for run in runs.values():
        assert [r["step"] for r in run["records"]] == [0, 50, 100, 150, 200]
        assert run["final_test_accuracy"] == run["records"][-1]["test_accuracy"] and not run["diverged"]
        assert all(r["p15"] <= r["p50"] <= r["p85"] for r in run["records"])
    # Same start: identical weights, and BN's running statistics start at (0, 1), so at step 0
    # the with-BN sigmoid input is the without-BN one (no bias yet) divided by sqrt(1 + eps).
    start_plain, start_bn = runs["without_bn"]["records"][0], runs["with_bn"]["records"][0]
    assert start_bn["p50"] == pytest.approx(start_plain["p50"] / np.sqrt(1 + 1e-5), rel=1e-4)
    # On digits, 200 steps from a N(0, 0.01^2) start: only the batch-norm network has learned.
    assert runs["with_bn"]["final_test_accuracy"] > 0.8 > runs["without_bn"]["final_test_accuracy"]
    assert any("[    with BN] step    200/200" in line for line in lines)
    for run in runs.values():
        drift = run["band_drift"]
        assert drift["from_step"] == 50 and drift["unit"] >= 0 and drift["median_over_units"] >= 0


def test_fig1_command_on_an_mnist_subset(data_dir, tmp_path, capsys):
    out = tmp_path / "fig1"
    code = main(["experiment", "fig1", "--dataset", "mnist", "--data-dir", str(data_dir), "--limit-train", "3000",
                 "--steps", "300", "--record-every", "100", "--probe-size", "200", "--seed", "1",
                 "--out-dir", str(out), "--json"])
    assert code == 0
    stdout = capsys.readouterr().out
    summary = strict_json(stdout.strip().splitlines()[-1])
    assert summary["experiment"] == "fig1" and summary["steps"] == 300 and summary["settings"]["seed"] == 1
    assert summary["dataset"].startswith("mnist: 3000 train / 10000 test examples, 784 features")
    assert set(summary["final_test_accuracy"]) == {"without_bn", "with_bn"}
    assert summary["final_test_accuracy"]["with_bn"] > 0.7 and summary["seconds"] > 0
    rows = (out / "fig1.csv").read_text().splitlines()
    assert rows[0] == "network,step,test_accuracy,test_loss,p15,p50,p85" and len(rows) == 1 + 2 * 4
    assert json.loads((out / "fig1.json").read_text())["networks"]["with_bn"]["records"][-1]["step"] == 300
    assert (out / "fig1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["outputs"] == {"csv": str(out / "fig1.csv"), "json": str(out / "fig1.json"),
                                  "png": str(out / "fig1.png")}


# -- test-stats --------------------------------------------------------------

def test_test_stats_short_run_on_digits(digits):
    settings = StatsSettings(steps=150, record_every=75, test_batch_sizes=(1, 2, 64))
    result = run_test_stats(digits, settings, log=None)
    table = {row["method"]: row for row in result["table"]}
    assert [row["kind"] for row in result["table"]] == ["running"] * 4 + ["population"] + ["batch"] * 3 + ["single"]
    assert table["batch statistics, test batches of 1"]["test_accuracy"] is None
    assert "undefined" in table["batch statistics, test batches of 1"]["note"]
    single = table["one example at a time, model.predict(x) (running, w=0.1)"]["test_accuracy"]
    assert single == table["running averages, new_batch_weight=0.1"]["test_accuracy"]
    assert table["population statistics of the training set (precise BN)"]["test_accuracy"] > 0.8
    steps = sorted({row["step"] for row in result["trajectory"]})
    assert steps == [75, 150]
    per_step = [row for row in result["trajectory"] if row["step"] == 150]
    assert len(per_step) == 4 * 3 + 1  # every weight x every BN layer, and the population accuracy
    # The slowest average (w=0.001, ~1000-step memory) has barely left its (0, 1) start: it is the farthest.
    far = [row["shift"] for row in per_step if row["weight"] == 0.001]
    near = [row["shift"] for row in per_step if row["weight"] == 0.1]
    assert min(far) > max(near)


def test_batch_statistics_evaluation_leaves_the_model_unchanged(digits):
    model = build_network(TrainingSettings(init_std=0.1), digits.num_features, digits.num_classes, True)
    train(model, TrainingSettings(steps=50, init_std=0.1), digits.x_train, digits.y_train)
    before = {name: value.copy() for name, value in model.named_buffers().items()}
    accuracy, note = batch_statistics_accuracy(model, digits.x_test, digits.y_test, 32)
    assert 0.0 <= accuracy <= 1.0 and note == ""
    assert all(np.array_equal(before[name], value) for name, value in model.named_buffers().items())
    assert all(layer.normalize_with == "auto" for layer in model.layers if hasattr(layer, "normalize_with"))
    # With the whole test set as one batch, the result is deterministic and beats chance.
    whole, _ = batch_statistics_accuracy(model, digits.x_test, digits.y_test, len(digits.x_test))
    assert whole > 0.5


def test_single_example_prediction_matches_batched_eval(digits):
    model = build_network(TrainingSettings(init_std=0.1), digits.num_features, digits.num_classes, True)
    train(model, TrainingSettings(steps=30, init_std=0.1), digits.x_train, digits.y_train)
    accuracy, note = single_example_accuracy(model, digits.x_test[:40], digits.y_test[:40])
    assert accuracy == evaluate(model, SoftmaxCrossEntropy(), digits.x_test[:40], digits.y_test[:40])[1]
    assert note.startswith("max |single - batched eval| over the logits: ")


def test_test_stats_command_writes_table_trajectory_and_plot(tmp_path, capsys):
    out = tmp_path / "stats"
    assert main(["experiment", "test-stats", "--dataset", "digits", "--steps", "60", "--record-every", "30",
                 "--weights", "0.01,0.1", "--test-batch-sizes", "1,8", "--out-dir", str(out), "--json"]) == 0
    stdout = capsys.readouterr().out
    summary = strict_json(stdout.strip().splitlines()[-1])
    assert summary["test_accuracy"]["batch statistics, test batches of 1"] is None
    assert "batch statistics, test batches of 1: undefined" in stdout
    assert (out / "test_stats.csv").read_text().startswith("method,kind,setting,test_accuracy,note")
    assert (out / "test_stats_trajectory.csv").is_file() and (out / "test_stats.png").stat().st_size > 1000


# -- lr-sweep ----------------------------------------------------------------

def test_lr_sweep_marks_a_diverged_run_at_chance(digits):
    result = run_lr_sweep(digits, SweepSettings(steps=60, lrs=(1.0, 1e38)), log=None)
    runs = {(run["network"], run["lr"]): run for run in result["runs"]}
    assert len(runs) == 4
    blown = runs[("without_bn", 1e38)]
    assert blown["diverged"] and blown["test_accuracy"] == 0.1 and blown["test_loss"] is None
    assert blown["steps"] < 60
    assert not runs[("with_bn", 1.0)]["diverged"] and runs[("with_bn", 1.0)]["test_accuracy"] > 0.5


def test_lr_sweep_holdout_split():
    data = load_dataset("digits", limit_train=100)
    x_train, y_train, x_eval, y_eval = split(data, 20)
    assert np.array_equal(x_eval, data.x_train[80:]) and len(x_train) == 80
    with pytest.raises(ValueError, match=r"expected holdout < 99 \(the training set has 100 examples\), got 99"):
        split(data, 99)


def test_lr_sweep_command(tmp_path, capsys):
    out = tmp_path / "lr"
    assert main(["experiment", "lr-sweep", "--dataset", "digits", "--steps", "30", "--lrs", "0.01,1",
                 "--holdout", "200", "--out-dir", str(out), "--no-plot", "--json"]) == 0
    summary = strict_json(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["evaluated_on"] == "last 200 training examples"
    assert set(summary["test_accuracy"]["with_bn"]) == {"0.01", "1"} and summary["diverged"] == []
    assert "png" not in summary["outputs"] and (out / "lr_sweep.csv").is_file()


# -- command-line errors -----------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["fig1", "--dataset", "digits", "--steps", "0"], r"bnnet experiment: error: expected steps >= 1, got 0"),
    (["fig1", "--dataset", "digits", "--optimizer", "adam", "--momentum", "0.9"], r"momentum is an SGD setting"),
    (["test-stats", "--dataset", "npz"], r"bnnet experiment: error: npz: expected path to a \.npz file"),
])
def test_experiment_errors_are_one_line(argv, message, tmp_path, capsys):
    assert main(["experiment", *argv, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err


def test_a_bad_list_flag_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "lr-sweep", "--lrs", "0.1,fast"])
    assert exit_info.value.code == 2
    assert "expected comma-separated float values, got '0.1,fast'" in capsys.readouterr().err


def test_experiment_without_a_name_prints_help(capsys):
    assert main(["experiment"]) == 2
    assert "fig1" in capsys.readouterr().out


def test_missing_matplotlib_is_reported_before_training(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["experiment", "fig1", "--dataset", "digits", "--out-dir", str(tmp_path)]) == 2
    assert "the plots need matplotlib" in capsys.readouterr().err and not (tmp_path / "fig1.csv").exists()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"the experiment plots need matplotlib.*pass --no-plot"):
        _figure(1.0, 1.0)


# -- the long version (CI runs the short ones above) -------------------------

@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("BNNET_RUN_SLOW") != "1",
                    reason="slow (30-100 s on 2 cores): set BNNET_RUN_SLOW=1")
def test_fig1_on_mnist_batch_norm_learns_sooner(data_dir):
    data = load_dataset("mnist", data_dir=data_dir)
    result = run_fig1(data, Fig1Settings(steps=3000, record_every=1000), log=None)
    plain, normalized = (result["networks"][name]["records"] for name in ("without_bn", "with_bn"))
    assert all(b["test_accuracy"] > a["test_accuracy"] for a, b in zip(plain[1:], normalized[1:]))
    assert normalized[-1]["test_accuracy"] > 0.95
