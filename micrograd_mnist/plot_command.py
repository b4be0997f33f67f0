"""`micrograd-mnist plot KIND ...`: the command line for viz.plots. It reads the checkpoint, the data or
metrics.json, has `evaluation` and `analysis` compute the numbers and viz draw them. viz (and matplotlib)
is imported only when a picture is drawn, so the CLI can list the kinds without it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from viz import PlotError  # viz's charts raise it too; catching it needs no matplotlib

from .files import finite_number

KINDS = {
    "weights": "first-layer weights as 28x28 pattern detectors: blue pixels excite, red inhibit (needs CKPT)",
    "curves": "training loss and validation accuracy per epoch (metrics.json beside CKPT, or --metrics FILE)",
    "confusion": "confusion matrix on the test set, true digit against predicted (needs CKPT and the data)",
    "mistakes": "a grid of misclassified test digits, 'pred X / true Y' (needs CKPT and the data)",
    "separability": "500 test 3s and 8s projected to 2-D by PCA, with the best straight line between them",
    "vanishing": "gradient size per layer at initialization: a deep sigmoid net against a deep ReLU net",
    "architecture": "the network as circles and connections (CKPT's sizes, else 784-16-16-10)",
    "digit": "one test digit as its 28x28 grid of input activations (--index I, default 0)",
}

# ---------------------------------------------------------------------------------------------------------------
# The command line: micrograd-mnist plot KIND [CKPT] ...

NEEDS_CHECKPOINT = ("weights", "confusion", "mistakes")
TAKES_NO_CHECKPOINT = ("vanishing",)
METRICS_LIMIT = 16 * 2**20  # bytes; a real metrics.json is a few kilobytes
MAX_EPOCHS = 100_000  # more points than any run has (checkpoint.MAX_EPOCHS), fewer than would make the picture slow


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `plot` on an argparse subparsers object; the parser back."""
    from .arguments import path_arg

    epilog = "kinds:\n" + "\n".join(f"  {kind:<13} {text}" for kind, text in KINDS.items())
    parser = subparsers.add_parser(
        "plot", help="pictures of a trained network, its training and MNIST (.png, .svg or .pdf)",
        description="Draw one picture. The output goes to --out, by default KIND.png in the current folder.",
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", metavar="KIND", help=f"what to draw: {', '.join(KINDS)}")
    parser.add_argument("checkpoint", nargs="?", type=path_arg, metavar="CKPT",
                        help="a model.npz or checkpoint.npz written by `micrograd-mnist train`")
    parser.add_argument("--metrics", type=path_arg, metavar="FILE",
                        help="curves: the metrics.json to draw (default: metrics.json beside CKPT)")
    parser.add_argument("--data-dir", type=path_arg, metavar="DIR", help="read the IDX files from here")
    parser.add_argument("--out", type=path_arg, metavar="FILE",
                        help="where to write: .png, .svg or .pdf (default KIND.png in the current folder)")
    parser.add_argument("--index", type=int, default=0, metavar="I", help="digit: which test image (default 0)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Draw the picture `args` asks for and print `wrote PATH`; user mistakes raise a one-line error."""
    if args.metrics is not None and args.kind in KINDS and args.kind != "curves":  # before matplotlib loads
        raise PlotError(f"--metrics is for plot curves; plot {args.kind} does not read a metrics.json")
    import numpy as np

    from viz.plots import (
        architecture,
        confusion,
        curves,
        digit,
        mistakes,
        picture_format,
        separability,
        vanishing,
        weights,
    )

    from . import analysis, checkpoint, data
    from .config import dataset_of
    from .evaluation import report
    from .files import check_output

    kind = args.kind
    if kind not in KINDS:
        raise PlotError(f"unknown plot {kind!r}: choose one of {', '.join(KINDS)}")
    out = Path(args.out) if args.out is not None else Path(f"{kind}.png")
    picture_format(out)  # a bad suffix fails before any slow work
    if kind in NEEDS_CHECKPOINT and args.checkpoint is None:
        raise PlotError(f"plot {kind} needs a checkpoint: micrograd-mnist plot {kind} RUN/model.npz")
    if kind in TAKES_NO_CHECKPOINT and args.checkpoint is not None:
        raise PlotError(f"plot {kind} draws fresh networks at initialization; it takes no CKPT")
    metrics_path = _metrics_path(args) if kind == "curves" else None
    check_output(out, [p for p in (args.checkpoint, metrics_path) if p is not None])  # never replace an input

    model = meta = None
    if args.checkpoint is not None and kind != "curves":
        model, meta, _ = checkpoint.load(args.checkpoint)
        _check_shape(kind, model.sizes, args.checkpoint)

    def test_set() -> tuple[np.ndarray, np.ndarray]:
        mnist = data.load(dataset_of(meta or {}), args.data_dir)
        return mnist.test_images, mnist.test_labels

    if kind == "weights":
        weights(model, out)
    elif kind == "curves":
        curves(_read_metrics(metrics_path), out)
    elif kind in ("confusion", "mistakes"):
        images, labels = test_set()
        test = report(model, images, labels)
        if kind == "confusion":
            confusion(test.confusion, out)
        else:
            mistakes(images, labels, test.predicted, out)
    elif kind == "separability":
        separability(analysis.project_and_fit(*test_set()), out)
    elif kind == "digit":
        images, labels = test_set()
        if not -len(images) <= args.index < len(images):
            raise PlotError(f"--index {args.index} is out of range: the test set has {len(images):,} images")
        digit(images[args.index], out, label=int(labels[args.index]))
    elif kind == "vanishing":
        depth, width = 8, 32
        vanishing(*(analysis.layer_gradients(a, depth, width) for a in ("sigmoid", "relu")), out, width=width)
    elif kind == "architecture":
        architecture(out, model.sizes if model is not None else (784, 16, 16, 10),
                     activation=model.activation if model is not None else None)
    print(f"wrote {out}")
    return 0


def _check_shape(kind: str, sizes: list[int], path: Path) -> None:
    """The pictures of a digit classifier need 28x28 inputs (and, to count its answers, 10 outputs)."""
    needs = {"weights": (784, None), "confusion": (784, 10), "mistakes": (784, 10)}.get(kind)
    if needs is None:
        return
    inputs, outputs = needs
    if sizes[0] != inputs or (outputs is not None and sizes[-1] != outputs):
        want = "784 inputs (28×28 pixels)" + (" and 10 outputs (the classes)" if outputs else "")
        raise PlotError(f"{path} is a {'-'.join(map(str, sizes))} network; plot {kind} needs {want}")


def _metrics_path(args: argparse.Namespace) -> Path:
    if args.metrics is not None:
        return Path(args.metrics)
    if args.checkpoint is not None:
        return Path(args.checkpoint).parent / "metrics.json"
    raise PlotError("plot curves needs a metrics.json: give RUN/model.npz (metrics.json beside it is used) "
                     "or --metrics FILE")


def _read_metrics(path: Path) -> dict:
    """metrics.json as training writes it, checked: a bounded regular file, and every field curves reads of the
    right type, so a damaged or foreign file is one line and not a traceback halfway through drawing."""
    from micrograd_mnist.files import read_input

    try:
        metrics = json.loads(read_input(path, METRICS_LIMIT, "metrics.json"))
    except FileNotFoundError:
        raise PlotError(f"no metrics file at {path}: training writes it at the end of a run as "
                         "OUT/metrics.json") from None
    except IsADirectoryError:
        raise PlotError(f"{path} is a folder; give the metrics.json in it") from None
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON, bad UTF-8, a 5,000-digit number
        detail = "nested too deeply" if isinstance(e, RecursionError) else e
        raise PlotError(f"{path} is not a readable metrics.json ({detail})") from None
    written_by = "give the metrics.json that `micrograd-mnist train` writes"
    if not isinstance(metrics, dict):
        raise PlotError(f"{path} is not a metrics.json written by `micrograd-mnist train`")
    for key in ("train_loss", "val_accuracy"):
        values = metrics.get(key)
        if not isinstance(values, list) or not values:
            raise PlotError(f"{path} has no {key!r} list; {written_by}")
        if len(values) > MAX_EPOCHS:
            raise PlotError(f"{path}: {key!r} has {len(values):,} entries, more than {MAX_EPOCHS:,} epochs; "
                             f"{written_by}")
        if not all(v is None or finite_number(v) for v in values):  # null: a value training could not give (notes say)
            raise PlotError(f"{path}: {key!r} must be a list of numbers; {written_by}")
    if metrics.get("test_accuracy") is not None and not finite_number(metrics["test_accuracy"]):
        raise PlotError(f"{path}: 'test_accuracy' must be a number; {written_by}")
    if not _config_ok(metrics.get("config")):
        raise PlotError(f"{path}: 'config' is not a training configuration; {written_by}")
    return metrics


def _config_ok(config) -> bool:
    """What curves reads of the config, to title the picture: sizes (a list of layer widths), activation, preset."""
    if config is None:
        return True
    if not isinstance(config, dict):
        return False
    sizes = config.get("sizes")
    if sizes is not None and not (isinstance(sizes, list) and len(sizes) <= 64
                                  and all(finite_number(n) and isinstance(n, int) and n > 0 for n in sizes)):
        return False
    return all(config.get(k) is None or (isinstance(config[k], str) and len(config[k]) <= 100)
               for k in ("activation", "preset"))
