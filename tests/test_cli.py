"""The command line, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bnnet.cli.main import main


def last_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """`python -m bnnet train` with no settings but --out and --json: the README's main job."""
    out = tmp_path_factory.mktemp("cli") / "model.npz"
    result = subprocess.run([sys.executable, "-m", "bnnet", "train", "--out", str(out), "--json"],
                            capture_output=True, text=True, check=True)
    return out, result.stdout


def test_train_on_digits_reaches_97_percent(trained_model):
    out, stdout = trained_model
    summary = last_json_line(stdout)
    assert summary["test_accuracy"] >= 0.97, summary
    assert {"train_loss", "train_accuracy", "test_loss", "test_accuracy", "epochs", "steps", "seconds"} <= set(summary)
    assert summary["dataset"] == "digits" and summary["epochs"] == 20 and out.is_file()
    assert "config:" in stdout and "  hidden = '100,100,100'" in stdout and "epoch 20/20" in stdout


def test_evaluate_reproduces_the_training_test_accuracy(trained_model, capsys):
    out, stdout = trained_model
    assert main(["evaluate", str(out), "--json"]) == 0
    summary = last_json_line(capsys.readouterr().out)
    assert summary["accuracy"] == last_json_line(stdout)["test_accuracy"]


def test_predict_by_index_and_from_a_file(trained_model, tmp_path, capsys):
    out, _ = trained_model
    assert main(["predict", str(out), "--index", "3", "--json"]) == 0
    by_index = last_json_line(capsys.readouterr().out)
    assert 0 <= by_index["predicted"] < 10 and abs(sum(by_index["probabilities"]) - 1) < 1e-9
    from bnnet.data import load_dataset

    example = load_dataset("digits").x_test[3]
    np.save(tmp_path / "one.npy", example)
    assert main(["predict", str(out), "--input", str(tmp_path / "one.npy"), "--json"]) == 0
    assert last_json_line(capsys.readouterr().out)["predicted"] == by_index["predicted"]


def test_predict_rejects_a_wrong_shape(trained_model, tmp_path, capsys):
    out, _ = trained_model
    np.save(tmp_path / "bad.npy", np.zeros(5))
    assert main(["predict", str(out), "--input", str(tmp_path / "bad.npy")]) == 2
    assert r"--input expected one example of shape (64,) or (1, 64), got (5,)" in capsys.readouterr().err


def test_flags_config_file_and_variants(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 2, "hidden": "16", "activation": "tanh"}))
    args = ["train", "--config", str(config), "--no-batch-norm", "--optimizer", "sgd", "--momentum", "0.5",
            "--batch-size", "32", "--seed", "3", "--lr", "0.05", "--out", str(tmp_path / "m.npz"), "--json"]
    assert main(args) == 0
    output = capsys.readouterr().out
    assert "  batch_norm = False" in output and "  activation = 'tanh'" in output and "  epochs = 2" in output
    assert last_json_line(output)["epochs"] == 2


def test_full_batch_gradient_descent_takes_one_step_per_epoch(tmp_path, capsys):
    assert main(["train", "--optimizer", "gd", "--epochs", "3", "--hidden", "8", "--out", str(tmp_path / "m.npz"),
                 "--json"]) == 0
    assert last_json_line(capsys.readouterr().out)["steps"] == 3


def test_user_errors_exit_2_with_one_clear_line(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"learning_rate": 1}))
    assert main(["train", "--config", str(config)]) == 2
    assert "unknown config keys ['learning_rate']" in capsys.readouterr().err
    assert main(["train", "--hidden", "10,x", "--out", str(tmp_path / "m.npz")]) == 2
    assert "--hidden expected comma-separated integers" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    assert "model file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--activation", "gelu"])


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "bnnet", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("bnnet ")
