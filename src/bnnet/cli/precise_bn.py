"""`bnnet precise-bn MODEL`: replace the running averages with exact population statistics."""
from __future__ import annotations

from .common import print_json_summary
from .toolbox_common import add_model_flags, add_statistics_flags


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "precise-bn", help="recompute every BatchNorm's statistics exactly from the training data",
        description="Precise batch norm (Algorithm 2, step 10 of Ioffe & Szegedy 2015): a pass over the "
                    "training data with the weights fixed replaces each BatchNorm's running mean and variance "
                    "with the exact statistics of its input, layer by layer in eval mode. Prints the test "
                    "accuracy before and after.")
    add_model_flags(parser, out_help="where to save the model with exact statistics (default: not saved)")
    add_statistics_flags(parser, batch_help="examples per forward pass; the result does not depend on it "
                                            "(default: 1000)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..toolbox.diagnostics import statistics_distance
    from ..toolbox.precise_bn import precise_bn
    from ..toolbox.walk import batch_norm_layers
    from .toolbox_common import accuracy, examples_used, load_model_and_data, save_result, shuffled

    loaded = load_model_and_data(args)
    model, data = loaded.model, loaded.data
    before_loss, before_acc = accuracy(loaded, model, data.x_test, data.y_test)
    old = {name: (layer.buffers["running_mean"].copy(), layer.buffers["running_var"].copy())
           for _, name, layer in batch_norm_layers(model)}
    stats = precise_bn(model, shuffled(data.x_train, args.seed), args.batch_size, args.max_batches)
    after_loss, after_acc = accuracy(loaded, model, data.x_test, data.y_test)
    used = examples_used(len(data.x_train), args.batch_size, args.max_batches)
    print(f"{data.name} train: exact statistics of {len(stats)} BatchNorm layer(s) from {used} examples")
    layers = {}
    for _, name, layer in batch_norm_layers(model):
        offset, scale = statistics_distance(layer, *old[name], stats[name])
        layers[name] = {"count": stats[name].count, "max_mean_change_std": float(offset.max()),
                        "max_scale_change": float(scale.max())}
        print(f"  layer {name}: running mean was off by up to {offset.max():.4f} std, "
              f"scale by up to {100 * scale.max():.2f}%")
    print(f"test accuracy: {before_acc:.4f} with running averages -> {after_acc:.4f} with exact statistics "
          f"(loss {before_loss:.4f} -> {after_loss:.4f})")
    out = save_result(args.out, model, loaded, "precise-bn", keep_optimizer=True, examples=used)
    if args.json:
        print_json_summary({"command": "precise-bn", "model": args.model, "dataset": data.name,
                            "examples": used, "accuracy_before": before_acc, "accuracy_after": after_acc,
                            "loss_before": before_loss, "loss_after": after_loss, "layers": layers, "out": out})
    return 0
