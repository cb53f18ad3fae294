"""PNG plots of the experiments (matplotlib, imported only here and only when a plot is drawn).

Figures are built with matplotlib's object API on an Agg canvas, never with
pyplot: nothing global changes (no backend switch, no open windows), so the
plots work on a machine without a display and inside a user's own session.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"without_bn": "tab:blue", "with_bn": "tab:red"}
LABELS = {"without_bn": "without BN", "with_bn": "with BN"}
PERCENTILE_STYLES = {"p15": ":", "p50": "-", "p85": "--"}
LAYER_STYLES = ("-", "--", ":", "-.")


def _figure(width: float, height: float):
    """A matplotlib Figure with an Agg canvas, or a clear error if matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"the experiment plots need matplotlib, which could not be imported ({error}); "
            f"install it with pip install 'bnnet[plot]', or pass --no-plot to write only the CSV/JSON files"
        ) from error
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def plot_fig1(result: dict[str, Any], path: str | Path) -> Path:
    """The paper's Figure 1: (a) test accuracy vs steps, (b, c) sigmoid-input percentiles without/with BN."""
    figure = _figure(13.0, 3.8)
    axes = figure.subplots(1, 3)
    networks = result["networks"]
    for name, run in networks.items():
        steps = [r["step"] for r in run["records"]]
        accuracy = [r["test_accuracy"] for r in run["records"]]
        axes[0].plot(steps, accuracy, color=COLORS[name],
                     label=f"{LABELS[name]} (final {run['final_test_accuracy']:.4f})")
    finals = [run["final_test_accuracy"] for run in networks.values()]
    if min(finals) > 0.8:
        axes[0].set_ylim(0.7, 1.0)  # the paper's range: the interesting part is near the top
    axes[0].set(title="(a) test accuracy (eval mode)", xlabel="training steps", ylabel="test accuracy")
    axes[0].grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    settings = result["settings"]
    for axis, name, letter in ((axes[1], "without_bn", "b"), (axes[2], "with_bn", "c")):
        records = networks.get(name, {}).get("records", [])
        steps = [r["step"] for r in records]
        for key, style in PERCENTILE_STYLES.items():
            axis.plot(steps, [r[key] for r in records], style, color=COLORS[name], label=f"{key[1:]}th percentile")
        axis.set(title=f"({letter}) {LABELS[name]}: one sigmoid's input", xlabel="training steps",
                 ylabel=f"input of sigmoid {settings['unit']}, last hidden layer")
        axis.grid(alpha=0.3)
        if letter == "b":  # (c) uses the same line styles
            axis.legend(loc="best", fontsize="small")
        drift = networks.get(name, {}).get("band_drift")
        if drift:
            # How far the median moved after the first tenth of training, in 15-85 band widths.
            axis.set_title(f"({letter}) {LABELS[name]}: one sigmoid's input\ndrift after step {drift['from_step']}: "
                           f"{drift['unit']:.2f} bands (all units: {drift['median_over_units']:.2f})", fontsize="medium")
    # One y range for (b) and (c), so the two bands compare at a glance.
    low = min(axes[1].get_ylim()[0], axes[2].get_ylim()[0])
    high = max(axes[1].get_ylim()[1], axes[2].get_ylim()[1])
    axes[1].set_ylim(low, high)
    axes[2].set_ylim(low, high)
    figure.suptitle(f"{result['dataset'].split(':')[0]}: {_architecture(settings)}, sigmoid, batch "
                    f"{settings['batch_size']}, {settings['optimizer']} lr {settings['lr']:g}, "
                    f"init N(0, {settings['init_std']:g}^2)", fontsize="medium")
    return _save(figure, path)


def plot_test_stats(result: dict[str, Any], path: str | Path) -> Path:
    """(a, b) running-vs-population distance per layer over training, (c) accuracy over training, (d) the table."""
    figure = _figure(12.0, 8.0)
    (shift_axis, scale_axis), (accuracy_axis, table_axis) = figure.subplots(2, 2)
    trajectory = result["trajectory"]
    weights = result["settings"]["weights"]
    colors = [f"C{i}" for i in range(len(weights))]
    layers = sorted({row["layer"] for row in trajectory if row["weight"] is not None}, key=int)
    for weight, color in zip(weights, colors):
        for number, (layer, style) in enumerate(zip(layers, LAYER_STYLES * 4), start=1):
            rows = [r for r in trajectory if r["weight"] == weight and r["layer"] == layer]
            steps = [r["step"] for r in rows]
            label = f"w={weight:g}, hidden layer {number}"
            shift_axis.plot(steps, [max(r["shift"], 1e-6) for r in rows], style, color=color, label=label)
            scale_axis.plot(steps, [max(r["scale"], 1e-6) for r in rows], style, color=color, label=label)
        rows = [r for r in trajectory if r["weight"] == weight and r["layer"] == layers[0]]
        accuracy_axis.plot([r["step"] for r in rows], [r["test_accuracy"] for r in rows], color=color,
                           label=f"running, w={weight:g}")
    population = [r for r in trajectory if r["statistics"] == "population"]
    accuracy_axis.plot([r["step"] for r in population], [r["test_accuracy"] for r in population], "k--",
                       label="population (precise BN)")
    for axis, what in ((shift_axis, "(a) shift: rms (mean_run - mean_pop) / std_pop"),
                       (scale_axis, "(b) scale: rms std_run / std_pop - 1")):
        axis.set(title=what, xlabel="training steps", ylabel="distance", yscale="log")
        axis.grid(alpha=0.3)
    shift_axis.legend(fontsize="x-small", ncol=2)
    accuracy_axis.set(title="(c) test accuracy with each statistics", xlabel="training steps", ylabel="test accuracy")
    final = [r["test_accuracy"] for r in population[-1:]]
    if final and final[0] > 0.8:
        accuracy_axis.set_ylim(max(0.0, final[0] - 0.1), min(1.0, final[0] + 0.02))
    accuracy_axis.grid(alpha=0.3)
    accuracy_axis.legend(fontsize="small", loc="lower right")
    _accuracy_bars(table_axis, result["table"])
    settings = result["settings"]
    figure.suptitle(f"{result['dataset'].split(':')[0]}: test-time statistics of one BN network "
                    f"({_architecture(settings)}, {settings['steps']} steps)", fontsize="medium")
    return _save(figure, path)


def _accuracy_bars(axis, table: list[dict[str, Any]]) -> None:
    """(d) final test accuracy per method as horizontal bars; undefined methods say so."""
    names = [row["method"].replace(", model.predict(x)", "").replace(" of the training set (precise BN)", "")
             for row in table]
    values = [row["test_accuracy"] or 0.0 for row in table]
    defined = [v for v, row in zip(values, table) if row["test_accuracy"] is not None]
    positions = list(range(len(table)))[::-1]
    axis.barh(positions, values, color=["tab:gray" if row["test_accuracy"] is None else "tab:green" for row in table])
    low = max(0.0, min(defined) - 0.02) if defined else 0.0
    axis.set_xlim(low, 1.0)
    for position, value, row in zip(positions, values, table):
        text = "undefined" if row["test_accuracy"] is None else f"{value:.4f}"
        axis.text(max(value, low) + 0.001, position, text, va="center", fontsize="small")
    axis.set_yticks(positions, names, fontsize="x-small")
    axis.set(title="(d) final test accuracy", xlabel="test accuracy")
    axis.grid(alpha=0.3, axis="x")


def plot_lr_sweep(result: dict[str, Any], path: str | Path) -> Path:
    """Final test accuracy against the learning rate (log scale), diverged runs marked with an x at chance."""
    figure = _figure(7.0, 4.5)
    axis = figure.subplots()
    for name in ("without_bn", "with_bn"):
        runs = sorted((r for r in result["runs"] if r["network"] == name), key=lambda r: r["lr"])
        if not runs:
            continue
        axis.plot([r["lr"] for r in runs], [r["test_accuracy"] for r in runs], "o-", color=COLORS[name],
                  label=LABELS[name])
        failed = [r for r in runs if r["diverged"]]
        if failed:
            axis.plot([r["lr"] for r in failed], [r["test_accuracy"] for r in failed], "x", color="black",
                      markersize=11, markeredgewidth=2, label=f"{LABELS[name]}: diverged (counted at chance)")
    axis.axhline(result["chance_accuracy"], color="gray", linewidth=0.8, linestyle=":")
    settings = result["settings"]
    axis.set(xscale="log", xlabel="learning rate", ylabel=f"final accuracy ({result['evaluated_on']})",
             title=f"{result['dataset'].split(':')[0]}: {_architecture(settings)} sigmoid, init N(0, "
                   f"{settings['init_std']:g}^2), {settings['optimizer']}, {settings['steps']} steps per run",
             ylim=(0.0, 1.0))
    axis.grid(alpha=0.3, which="both")
    axis.legend(loc="best", fontsize="small")
    return _save(figure, path)


def _architecture(settings: dict[str, Any]) -> str:
    return "-".join(str(size) for size in ["in", *settings["hidden"], "out"])
