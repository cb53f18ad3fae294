"""`bnnet recalibrate MODEL`: AdaBN, batch-norm statistics re-estimated on a shifted domain."""
from __future__ import annotations

from dataclasses import asdict, replace

from .common import print_json_summary
from .toolbox_common import add_model_flags, add_statistics_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "recalibrate", help="re-estimate BatchNorm statistics on unlabeled data from a new domain (AdaBN)",
        description="AdaBN (Li et al. 2016): keep every weight and replace each BatchNorm's statistics with "
                    "those of unlabeled target-domain data. The target domain is the dataset's images with the "
                    "brightness/contrast/noise shift given here (or the dataset as it is, with no shift flags). "
                    "Prints the shifted test accuracy before and after.")
    add_model_flags(parser, out_help="where to save the recalibrated model (default: not saved)")
    parser.add_argument("--brightness", type=float, default=0.0, help="added to every pixel, -1..1 (default: 0)")
    parser.add_argument("--contrast", type=float, default=1.0,
                        help="factor on the distance from mid-grey 0.5 (default: 1)")
    parser.add_argument("--noise-std", type=float, default=0.0, help="std of added Gaussian noise (default: 0)")
    parser.add_argument("--no-clip", dest="clip", action="store_false", help="do not clip shifted pixels to [0, 1]")
    parser.add_argument("--calibrate-on", choices=("train", "test"), default="train",
                        help="unlabeled target data: the shifted training images (default) or the shifted "
                             "test images themselves (transductive)")
    add_statistics_flags(parser, batch_help="examples per forward pass; the result does not depend on it "
                                            "(default: 1000)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..toolbox.recalibrate import recalibrate
    from ..toolbox.shift import Shift
    from .toolbox_common import accuracy, examples_used, load_model_and_data, save_result, shuffled

    shift = Shift(brightness=args.brightness, contrast=args.contrast, noise_std=args.noise_std, clip=args.clip,
                  seed=args.seed)
    loaded = load_model_and_data(args)
    model, data = loaded.model, loaded.data
    x_test = shift(data.x_test)
    # Other noise for the training images than for the test images: they are different pictures.
    x_calibration = x_test if args.calibrate_on == "test" else replace(shift, seed=args.seed + 1)(data.x_train)
    clean_acc = accuracy(loaded, model, data.x_test, data.y_test)[1]
    before_loss, before_acc = accuracy(loaded, model, x_test, data.y_test)
    recalibrate(model, shuffled(x_calibration, args.seed), args.batch_size, args.max_batches)
    after_loss, after_acc = accuracy(loaded, model, x_test, data.y_test)
    print(f"{data.name} test, {shift.describe()}: accuracy {before_acc:.4f} before recalibration -> "
          f"{after_acc:.4f} after (clean test accuracy of the original: {clean_acc:.4f})")
    used = examples_used(len(x_calibration), args.batch_size, args.max_batches)
    print(f"recalibrated on {used} unlabeled shifted {args.calibrate_on} images")
    out = save_result(args.out, model, loaded, "recalibrate", keep_optimizer=True, shift=asdict(shift),
                      calibrate_on=args.calibrate_on, examples=used)
    if args.json:
        print_json_summary({"command": "recalibrate", "model": args.model, "dataset": data.name,
                            "shift": asdict(shift), "calibrate_on": args.calibrate_on, "examples": used,
                            "clean_accuracy": clean_acc, "accuracy_before": before_acc,
                            "accuracy_after": after_acc, "loss_before": before_loss, "loss_after": after_loss,
                            "out": out})
    return 0
