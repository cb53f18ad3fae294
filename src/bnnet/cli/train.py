"""`bnnet train`: train a batch-norm network and save it."""
from __future__ import annotations

from ..training.config import TrainConfig
from .common import print_json_summary
from .options import add_config_flags, config_from_args, format_config


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a network (default: 64-100-100-100-10 with batch norm on the built-in digits)",
        description="Train a feed-forward network with batch normalization, evaluate it on the test "
                    "set in eval mode (running statistics) and save it.")
    add_config_flags(parser, TrainConfig)
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..training.job import run_training

    config = config_from_args(args, TrainConfig)
    config.validate()
    print(format_config(config), flush=True)
    result = run_training(config)
    s = result.summary
    print(f"test: loss {s['test_loss']:.4f}  accuracy {s['test_accuracy']:.4f} (eval mode, running statistics)")
    print(f"train: loss {s['train_loss']:.4f}  accuracy {s['train_accuracy']:.4f}  "
          f"({s['epochs']} epochs, {s['steps']} steps, {s['seconds']:.1f} s)")
    print(f"saved model to {s['out']}")
    if config.json:
        print_json_summary(s)
    return 1 if s["stopped"] else 0
