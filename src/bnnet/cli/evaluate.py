"""`bnnet evaluate MODEL`: loss and accuracy of a saved model in eval mode."""
from __future__ import annotations

from .common import add_data_flags, dataset_for_model, print_json_summary


def register(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate a saved model on a dataset (eval mode)")
    parser.add_argument("model", help="model file written by bnnet train")
    add_data_flags(parser)
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..checkpoint import load
    from ..losses import LOSSES
    from ..training.evaluate import evaluate

    checkpoint = load(args.model)
    data = dataset_for_model(args, checkpoint.config)
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    loss, accuracy = evaluate(checkpoint.model, LOSSES[checkpoint.config.get("loss", "cross_entropy")](), x, y)
    print(f"{data.name} {args.split}: {len(x)} examples  loss {loss:.4f}  accuracy {accuracy:.4f}")
    if args.json:
        print_json_summary({"command": "evaluate", "model": args.model, "dataset": data.name,
                            "split": args.split, "examples": len(x), "loss": loss, "accuracy": accuracy})
    return 0
