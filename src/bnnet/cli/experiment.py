"""`bnnet experiment fig1|test-stats|lr-sweep`: the batch-norm paper's claims, measured on real data.

Each sub-command trains the paper's Figure 1 network (784-100-100-100-10,
sigmoid, batches of 60), writes CSV + JSON + PNG under --out-dir, and with
--json prints one JSON summary as the last line of stdout. Every flag maps to
a field of the experiment's settings dataclass in :mod:`bnnet.experiments`.
"""
from __future__ import annotations

import argparse

from .common import print_json_summary

DATASETS = ("digits", "mnist", "fashion-mnist", "npz", "csv")

# (sub-command, module, settings class, run, save, summary, help)
EXPERIMENTS = {
    "fig1": ("fig1", "Fig1Settings", "run_fig1", "save_fig1", "fig1_summary",
             "Figure 1 of Ioffe & Szegedy (2015): the same sigmoid network with and without batch norm"),
    "test-stats": ("test_stats", "StatsSettings", "run_test_stats", "save_test_stats", "stats_summary",
                   "test-time statistics: running averages, population, batch statistics, single examples"),
    "lr-sweep": ("lr_sweep", "SweepSettings", "run_lr_sweep", "save_lr_sweep", "lr_sweep_summary",
                 "final accuracy against the learning rate, with and without batch norm"),
}

# flag help per settings field; the default comes from the dataclass
FIELD_HELP = {
    "steps": "optimizer steps per network",
    "batch_size": "examples per mini-batch",
    "hidden": "hidden layer sizes, comma-separated",
    "init_std": "std of the Gaussian initial weights",
    "optimizer": "the update rule, the same for both networks",
    "lr": "learning rate (the same for both networks)",
    "momentum": "SGD momentum",
    "new_batch_weight": "weight of the new batch in batch norm's running averages (PyTorch's momentum)",
    "seed": "seed of the weights, the batch order and the probe batch",
    "record_every": "steps between records",
    "probe_size": "test images whose sigmoid inputs are summarised",
    "unit": "which sigmoid unit of the last hidden layer to follow",
    "weights": "running-average weights to compare, comma-separated",
    "test_batch_sizes": "test batch sizes for evaluation with batch statistics, comma-separated",
    "lrs": "learning rates, comma-separated",
    "holdout": "evaluate on the last N training examples instead of the test set (0: test set)",
}


def register(subparsers) -> None:
    from ..experiments import fig1, lr_sweep, test_stats  # light: numpy and bnnet only

    modules = {"fig1": fig1, "test_stats": test_stats, "lr_sweep": lr_sweep}
    parser = subparsers.add_parser(
        "experiment", help="reproduce the batch-norm paper's Figure 1 and related studies on MNIST",
        description="Experiments on real data. Each writes CSV, JSON and PNG files under --out-dir.")
    commands = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    for name, (module_name, class_name, *_, help_text) in EXPERIMENTS.items():
        settings_class = getattr(modules[module_name], class_name)
        sub = commands.add_parser(name, help=help_text, description=help_text + ".")
        _add_settings_flags(sub, settings_class)
        sub.add_argument("--dataset", choices=DATASETS, default="mnist", help="dataset (default: mnist)")
        sub.add_argument("--data-dir", default=None,
                         help="directory with the MNIST/Fashion-MNIST IDX files (default: $BNNET_DATA_DIR)")
        sub.add_argument("--data-path", default=None, help="the .npz/.csv file for --dataset npz|csv")
        sub.add_argument("--limit-train", type=int, default=None, help="use only the first N training examples")
        sub.add_argument("--out-dir", default=f"runs/experiments/{module_name}",
                         help="where the CSV/JSON/PNG files go (default: %(default)s)")
        sub.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True,
                         help="draw the PNG (needs matplotlib; default: on)")
        sub.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="progress bar on stderr (default: only on a terminal)")
        sub.add_argument("--json", action="store_true", help="print a one-line JSON summary as the last line")
        sub.set_defaults(handler=run, settings_class=settings_class, experiment_name=name)
    parser.set_defaults(handler=lambda args: _missing(parser))


def _missing(parser) -> int:
    parser.print_help()
    return 2


def _add_settings_flags(parser: argparse.ArgumentParser, settings_class: type) -> None:
    from ..optim import OPTIMIZERS

    choices = {"optimizer": tuple(OPTIMIZERS)}
    defaults = settings_class()
    for name in settings_class.field_names():
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) \
            if isinstance(default, tuple) else default
        kind = _list_of(type(default[0])) if isinstance(default, tuple) else type(default)
        parser.add_argument(flag, dest=name, type=kind, default=None, choices=choices.get(name),
                            help=f"{FIELD_HELP.get(name, name)} (default: {shown})")


def _list_of(kind: type):
    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}")
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one {kind.__name__} value, got {text!r}")
        return values
    parse.__name__ = f"list of {kind.__name__}"
    return parse


def run(args) -> int:
    import importlib

    from ..data import load_dataset

    module_name, _, run_name, save_name, summary_name, _ = EXPERIMENTS[args.experiment_name]
    module = importlib.import_module(f"bnnet.experiments.{module_name}")
    settings_class = args.settings_class
    values = {name: getattr(args, name) for name in settings_class.field_names() if getattr(args, name) is not None}
    settings = settings_class(**values)
    settings.validate()
    if args.plot:
        _check_matplotlib()
    data = load_dataset(args.dataset, data_dir=args.data_dir, path=args.data_path, seed=settings.seed,
                        limit_train=args.limit_train)
    print(f"experiment {args.experiment_name}: {data.describe()}", flush=True)
    print("settings:\n" + "\n".join(f"  {key} = {value!r}" for key, value in settings.as_dict().items()), flush=True)
    result = getattr(module, run_name)(data, settings, progress=args.progress)
    paths = getattr(module, save_name)(result, args.out_dir, plot=args.plot)
    summary = getattr(module, summary_name)(result, paths)
    _print_result(args.experiment_name, result, summary)
    if args.json:
        print_json_summary(summary)
    return 0


def _check_matplotlib() -> None:
    """Fail before training, not after it, when the plot cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ValueError(f"the plots need matplotlib, which could not be imported ({error}); install it "
                         f"with pip install 'bnnet[plot]', or pass --no-plot for the CSV/JSON files only") from error


def _print_result(name: str, result: dict, summary: dict) -> None:
    if name == "fig1":
        for network, accuracy in summary["final_test_accuracy"].items():
            print(f"{network}: final test accuracy {accuracy:.4f} "
                  f"({summary['seconds_per_network'][network]:.1f} s)")
    elif name == "test-stats":
        for row in result["table"]:
            value = "undefined" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
            print(f"{row['method']}: {value}" + (f"  [{row['note']}]" if row["note"] else ""))
    else:
        for run in result["runs"]:
            print(f"lr {run['lr']:g} {run['network']}: {run['test_accuracy']:.4f}"
                  + (" (diverged)" if run["diverged"] else ""))
    print(f"{summary['seconds']:.1f} s; wrote " + ", ".join(summary["outputs"].values()))
