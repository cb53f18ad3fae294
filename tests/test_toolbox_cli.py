"""The toolbox commands as a user runs them: precise-bn, fold, recalibrate, inspect."""
from __future__ import annotations

import json

import numpy as np
import pytest

import bnnet
from bnnet.cli.main import main
from bnnet.data import load_dataset
from bnnet.nn import BatchNorm
from bnnet.toolbox import precise_bn


def last_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("toolbox") / "model.npz"
    assert main(["train", "--epochs", "2", "--hidden", "32,32", "--out", str(path)]) == 0
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_precise_bn_installs_the_exact_statistics_and_keeps_the_optimizer(model_file, tmp_path, capsys):
    out = tmp_path / "precise.npz"
    code, stdout, _ = run(capsys, "precise-bn", model_file, "--batch-size", "100", "--out", out, "--json")
    assert code == 0
    summary = last_json_line(stdout)
    assert summary["command"] == "precise-bn" and summary["examples"] == 1437 and summary["out"] == str(out)
    assert set(summary["layers"]) == {"1", "4"} and 0 <= summary["accuracy_after"] <= 1
    assert "test accuracy:" in stdout and "with exact statistics" in stdout
    saved = bnnet.load(out)
    expected = bnnet.load(model_file).model
    precise_bn(expected, load_dataset("digits").x_train)
    np.testing.assert_allclose(saved.model[4].buffers["running_var"], expected[4].buffers["running_var"], rtol=1e-5)
    assert saved.optimizer is not None and saved.metadata["toolbox"][-1]["command"] == "precise-bn"


def test_precise_bn_max_batches(model_file, capsys):
    code, stdout, _ = run(capsys, "precise-bn", model_file, "--batch-size", "50", "--max-batches", "3", "--json")
    assert code == 0 and last_json_line(stdout)["examples"] == 150 and last_json_line(stdout)["out"] is None
    assert "not saved (give --out FILE to save the result)" in stdout


def test_fold_writes_a_plain_model_with_the_same_outputs(model_file, tmp_path, capsys):
    out = tmp_path / "folded.npz"
    code, stdout, _ = run(capsys, "fold", model_file, "--out", out, "--benchmark", "--repeats", "3", "--json")
    assert code == 0
    summary = last_json_line(stdout)
    assert summary["removed_batch_norms"] == 2 and summary["max_relative_difference"] < 1e-5
    assert summary["accuracy_folded"] == summary["accuracy_original"]
    assert set(summary["timing"]) == {f"{method}, {size}" for method in ("forward", "predict")
                                      for size in ("single example", "batch of 360")}
    assert summary["timing"]["predict, single example"]["folded_us"] > 0 and summary["engine"] in ("fast", "reference")
    folded = bnnet.load(out)
    assert not any(isinstance(layer, BatchNorm) for layer in folded.model.modules()) and folded.optimizer is None
    x = load_dataset("digits").x_test
    original = bnnet.load(model_file).model
    np.testing.assert_allclose(folded.model.predict(x), original.predict(x), rtol=1e-4, atol=1e-4)


def test_recalibrate_repairs_a_shifted_test_set(model_file, tmp_path, capsys):
    out = tmp_path / "adapted.npz"
    code, stdout, _ = run(capsys, "recalibrate", model_file, "--brightness", "0.2", "--contrast", "0.5",
                          "--out", out, "--json")
    assert code == 0
    summary = last_json_line(stdout)
    assert summary["accuracy_after"] > summary["accuracy_before"] + 0.2
    assert summary["shift"] == {"brightness": 0.2, "contrast": 0.5, "noise_std": 0.0, "clip": True, "seed": 0}
    assert "brightness +0.2, contrast x0.5, clipped to [0, 1]: accuracy" in stdout
    assert bnnet.load(out).metadata["toolbox"][-1]["calibrate_on"] == "train"


def test_inspect_prints_a_table_and_advice(model_file, tmp_path, capsys):
    code, stdout, _ = run(capsys, "inspect", model_file, "--json")
    assert code == 0
    summary = last_json_line(stdout)
    assert [layer["name"] for layer in summary["layers"]] == ["1", "4"]
    assert summary["layers"][0]["batch_size"] == 60  # the model's training batch size
    assert "mean off (std)" in stdout and "train/eval gap" in stdout
    # exact statistics leave no stale-statistics finding
    run(capsys, "precise-bn", model_file, "--out", tmp_path / "precise.npz")
    code, stdout, _ = run(capsys, "inspect", tmp_path / "precise.npz", "--batch-size", "30", "--json")
    assert code == 0 and not any("stale" in advice for layer in last_json_line(stdout)["layers"]
                                 for advice in layer["advice"])


@pytest.mark.parametrize("args, message", [
    (["fold", "{model}", "--repeats", "0"], "bnnet fold: error: --repeats and --benchmark-batch expected >= 1, got 0"),
    (["recalibrate", "{model}", "--contrast", "0"], "bnnet recalibrate: error: Shift expected contrast > 0"),
    (["inspect", "{model}", "--batch-size", "1"], "bnnet inspect: error: diagnose expected batch_size >= 2"),
    (["precise-bn", "{model}", "--batch-size", "0"], "bnnet precise-bn: error: expected batch_size >= 1, got 0"),
    (["precise-bn", "{plain}"], "precise_bn expected a model with at least one BatchNorm layer"),
    (["fold", "{plain}"], None),
])
def test_user_errors_exit_2_with_one_clear_line(model_file, tmp_path, capsys, args, message):
    plain = tmp_path / "plain.npz"
    bnnet.save(plain, bnnet.mlp([64, 8, 10], batch_norm=False))
    code, stdout, stderr = run(capsys, *[arg.format(model=model_file, plain=plain) for arg in args])
    if message is None:  # folding a model without batch norm is allowed: nothing to fold
        assert code == 0 and "folded 0 BatchNorm layer(s)" in stdout
    else:
        assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
