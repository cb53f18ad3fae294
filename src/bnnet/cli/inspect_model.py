"""`bnnet inspect MODEL`: per-BatchNorm diagnostics, each finding with what to do about it."""
from __future__ import annotations

from .common import print_json_summary
from .toolbox_common import add_model_flags, add_statistics_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="diagnose every BatchNorm: stale statistics, train/eval gap, collapsed channels, gamma ~ 0",
        description="For every BatchNorm: the distance between its running statistics and the exact statistics "
                    "of its input over the data, the difference between training-mode and eval-mode outputs "
                    "on one batch, channels whose variance has collapsed and gammas near zero; and what to do "
                    "about each. Changes nothing.")
    add_model_flags(parser, out_help=None)
    parser.add_argument("--split", choices=("train", "test"), default="train",
                        help="data to compare the statistics with (default: train, what they estimate)")
    add_statistics_flags(parser, default_batch=None,
                         batch_help="size of the batch for the train/eval comparison (default: the model's "
                                    "training batch size, else 60)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..toolbox.diagnostics import diagnose, format_report
    from .toolbox_common import load_model_and_data, shuffled

    loaded = load_model_and_data(args)
    data = loaded.data
    x = data.x_train if args.split == "train" else data.x_test
    batch_size = args.batch_size or int(loaded.checkpoint.config.get("batch_size", 60))
    report = diagnose(loaded.model, shuffled(x, args.seed), batch_size=batch_size, max_batches=args.max_batches)
    print(f"{args.model} on {data.name} {args.split} ({len(x)} examples; train/eval batch of {batch_size}):")
    print(format_report(report))
    if args.json:
        print_json_summary({"command": "inspect", "model": args.model, "dataset": data.name, "split": args.split,
                            "layers": [d.as_dict() for d in report],
                            "problems": sum(len(d.advice) for d in report)})
    return 0
