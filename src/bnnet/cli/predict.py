"""`bnnet predict MODEL`: classify one example, from a .npy file or a dataset row."""
from __future__ import annotations

from .common import add_data_flags, dataset_for_model, print_json_summary


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="predict the class of a single example (eval mode)")
    parser.add_argument("model", help="model file written by bnnet train")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help=".npy file holding one example (1-D, or shape (1, features))")
    source.add_argument("--index", type=int, help="row of the dataset split to predict")
    add_data_flags(parser)
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    parser.set_defaults(handler=run)


def _read_example(path: str, num_features: int | None):
    import numpy as np

    example = np.load(path, allow_pickle=False)
    if example.ndim == 2 and example.shape[0] == 1:
        example = example[0]
    if example.ndim != 1 or (num_features is not None and example.shape[0] != num_features):
        raise ValueError(
            f"--input expected one example of shape ({num_features},) or (1, {num_features}), got {example.shape}"
        )
    if not np.issubdtype(example.dtype, np.number) or not np.all(np.isfinite(example)):
        raise ValueError(f"--input expected finite numbers, got dtype {example.dtype} with non-finite values or none")
    return example


def run(args) -> int:
    import numpy as np

    from ..checkpoint import load
    from ..functional.losses import log_softmax

    checkpoint = load(args.model)
    model = checkpoint.model
    label = None
    if args.input is not None:
        example = _read_example(args.input, model.input_features())
    else:
        data = dataset_for_model(args, checkpoint.config)
        x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
        if not 0 <= args.index < len(x):
            raise ValueError(f"--index expected 0..{len(x) - 1} for the {args.split} split, got {args.index}")
        example, label = x[args.index], int(y[args.index])
    logits = model.predict(example)
    probabilities = np.exp(log_softmax(logits.astype(np.float64)))
    predicted = int(np.argmax(probabilities))
    line = f"predicted class {predicted} (probability {probabilities[predicted]:.4f})"
    print(line + (f"; true label {label}" if label is not None else ""))
    if args.json:
        print_json_summary({"command": "predict", "model": args.model, "predicted": predicted, "label": label,
                            "probabilities": probabilities.tolist()})
    return 0
