"""micrograd-mnist: train, evaluate and query MNIST networks, or run micrograd's demo."""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import math
import os
import signal
import stat
import sys
import threading
from pathlib import Path

from .arguments import Parser, path_arg


class UserError(Exception):
    """Anything the user can fix: printed as one line, exit code 2."""


def positive(kind, zero_ok: bool = False, most: float = math.inf):
    """An argparse type: a finite number above zero (or at least zero), and at most `most`."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if not (value >= 0 if zero_ok else value > 0):
            raise argparse.ArgumentTypeError(f"must be {'zero or more' if zero_ok else 'positive'}, got {text}")
        if value > most:  # e.g. more epochs than a checkpoint may record: the run could never be resumed
            raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {text}")
        return value
    return parse


MAX_MOONS_STEPS = 100_000  # about an hour of the scalar engine: more is a typo, not a plan


def build_parser() -> argparse.ArgumentParser:
    from . import explore
    from .checkpoint import MAX_BATCH, MAX_EPOCHS
    from .config import ADAM_LR, PRESETS, Config
    from .data import DATASETS
    from .demos import DEMOS, GRAPHS, TENSOR_GRAPHS

    parser = Parser(prog="micrograd-mnist", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train an MLP on MNIST with the Tensor engine")
    def per_preset(key: str) -> str:
        return ", ".join(f"{name} {preset[key]}" for name, preset in PRESETS.items())

    train.add_argument("--preset", choices=PRESETS, help="; ".join(
        f"{name}: {'-'.join(map(str, p['sizes']))} {p['activation']}" + " (default)" * (name == Config.preset)
        for name, p in PRESETS.items()))
    train.add_argument("--epochs", type=positive(int, most=MAX_EPOCHS),
                       help=f"default: the preset's ({per_preset('epochs')})")
    train.add_argument("--batch-size", type=positive(int, most=MAX_BATCH),
                       help=f"default: the preset's ({per_preset('batch_size')})")
    train.add_argument("--lr", type=positive(float), help="peak learning rate, cosine-decayed epoch by epoch "
                       f"(default: the preset's, {per_preset('lr')}; with Adam {ADAM_LR:g})")
    # None for "not given", so that --resume can tell a repeated setting from a changed one; Config has the defaults
    train.add_argument("--optimizer", choices=["sgd", "adam"], help=f"default {Config.optimizer}")
    train.add_argument("--seed", type=positive(int, zero_ok=True), help=f"default {Config.seed}")
    train.add_argument("--dataset", choices=DATASETS, help=f"default {Config.dataset}")
    train.add_argument("--data-dir", type=path_arg, help="read the IDX files from here (or set MICROGRAD_MNIST_DATA)")
    train.add_argument("--out", type=path_arg, help="output folder (default runs/latest, or CKPT's folder with "
                       "--resume); locked while the run lasts, so a second run on it is refused")
    train.add_argument("--resume", type=path_arg, metavar="CKPT",
                       help="continue from OUT/checkpoint.npz, with the settings it was started with")
    train.add_argument("--force", action="store_true",
                       help="start afresh in an --out that holds another run's files, replacing them")
    train.add_argument("--quiet", action="store_true", help="no progress bar, one line per epoch")

    evaluate = commands.add_parser("evaluate", help="accuracy and per-class accuracy of a checkpoint")
    evaluate.add_argument("checkpoint", type=path_arg, metavar="CKPT")
    evaluate.add_argument("--data-dir", type=path_arg)
    evaluate.add_argument("--confusion", type=path_arg, metavar="FILE",
                          help="write the confusion matrix as CSV ('-': to standard output, the report to stderr)")

    predict = commands.add_parser("predict", help="classify one image of a digit")
    predict.add_argument("checkpoint", type=path_arg, metavar="CKPT")
    predict.add_argument("image", type=path_arg, metavar="IMAGE")

    backprop = commands.add_parser("backprop", help="step through backprop one chain-rule step at a time",
                                   description="Enter = next step, b = back, q = quit.")
    backprop.add_argument("demo", nargs="?", choices=[*GRAPHS, *TENSOR_GRAPHS],
                          help="a built-in graph (or use --expr); seed-layer steps through whole matrices")
    backprop.add_argument("--expr", help='an expression, e.g. "(w*x + b - y)**2" or "b = a + a; c = b + b"')
    backprop.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                          help="values for --expr's names")
    backprop.add_argument("--all", action="store_true", help="print every step without asking")
    backprop.add_argument("--quiz", action="store_true", help="ask for each gradient before revealing it")
    backprop.add_argument("--frames", type=path_arg, metavar="DIR", help="write one picture per step")
    backprop.add_argument("--html", type=path_arg, metavar="FILE",
                          help="write one self-contained page of all steps ('-': to standard output)")
    backprop.add_argument("--format", choices=["svg", "png", "pdf", "dot"], help="for --frames (default svg)")
    backprop.add_argument("--mirror", metavar="NAME[i,j]", help="for seed-layer and 3b1b-digit: show one gradient "
                          "entry (e.g. W[2,1]) as the sum of the scalar engine's chain-rule terms")
    backprop.add_argument("--checkpoint", type=path_arg, metavar="CKPT",
                          help="for 3b1b-digit: a 784-16-16-10 sigmoid network (train --preset 3b1b); "
                               "without it, a short built-in run")
    backprop.add_argument("--digit", type=positive(int, zero_ok=True), metavar="I",
                          help="for 3b1b-digit: which MNIST test image (default 0)")
    backprop.add_argument("--data-dir", type=path_arg, help="for 3b1b-digit: MNIST files")

    demo = commands.add_parser("demo", help="the seed texts' demos, printed and drawn")
    demo.add_argument("name", choices=list(DEMOS))
    demo.add_argument("--out", type=path_arg, default=Path("demo-pictures"),
                      help="picture folder (default demo-pictures)")
    demo.add_argument("--format", choices=["svg", "png", "pdf", "dot"], default="svg")
    demo.add_argument("--data-dir", type=path_arg, help="MNIST files, for the 784-input neuron's digit")

    from . import plot_command

    plot_command.add_parser(commands)
    explore.add_parser(commands)

    moons = commands.add_parser("moons", help="micrograd's demo: a scalar-engine MLP learns two moons")
    moons.add_argument("--steps", type=positive(int, most=MAX_MOONS_STEPS), default=100,
                       help=f"SGD steps (default 100, at most {MAX_MOONS_STEPS:,})")
    moons.add_argument("--seed", type=positive(int, zero_ok=True), default=1)
    moons.add_argument("--out", type=path_arg, metavar="DIR", help="draw the decision boundary into DIR/moons.png")

    return parser


def cmd_train(args) -> int:
    from . import data
    from .training import start, train

    data_dir = str(args.data_dir.resolve()) if args.data_dir is not None else None
    given = {"preset": args.preset, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
             "optimizer": args.optimizer, "seed": args.seed, "dataset": args.dataset, "data_dir": data_dir}
    cfg, resumed = start(given, args.resume)
    args.out = args.out or (args.resume.parent if args.resume is not None else Path("runs/latest"))
    _output_folder(args.out, "--out")
    # --data-dir is cfg's folder, or names one a resumed checkpoint never recorded (start refused any other)
    mnist = data.load(cfg.dataset, data_dir or cfg.data_dir, every_class=True)
    progress = not args.quiet and sys.stderr.isatty()
    metrics = train(cfg, mnist, args.out, resume=resumed, progress=progress, force=args.force)
    c = metrics["config"]
    arch = "-".join(map(str, c["sizes"]))
    print(f"test accuracy {metrics['test_accuracy']:.2%} on {len(mnist.test_labels):,} {c['dataset']} test images "
          f"({c['preset']}: {arch} {c['activation']}, {metrics['epochs']} epoch{'s' * (metrics['epochs'] != 1)}, "
          f"{sum(metrics['epoch_seconds']):.1f} s) -> {args.out / 'model.npz'}")
    return 0


def cmd_evaluate(args) -> int:
    from . import data
    from .checkpoint import load
    from .config import dataset_of
    from .evaluation import report
    from .files import atomic_write

    model, meta, _ = load(args.checkpoint)
    _check_takes_digits(model, args.checkpoint)
    dataset = dataset_of(meta)
    mnist = data.load(dataset, args.data_dir, every_class=True)
    test = report(model, mnist.test_images, mnist.test_labels)
    counts = test.confusion
    to_stdout = _to_stdout(args.confusion)
    out = sys.stderr if to_stdout else sys.stdout  # with --confusion -, standard output is the CSV alone
    print(f"{args.checkpoint}: test accuracy {test.accuracy:.2%} on {len(test.predicted):,} {dataset} test images",
          file=out)
    for digit, (row, share) in enumerate(zip(counts, test.per_class)):
        print(f"  class {digit}: {share:.2%}  ({row[digit]}/{row.sum()})", file=out)  # every class is there (load)
    if args.confusion:
        lines = ["true\\predicted," + ",".join(map(str, range(10)))]
        lines += [f"{i}," + ",".join(map(str, row)) for i, row in enumerate(counts)]
        atomic_write(args.confusion, lambda f: f.write(("\n".join(lines) + "\n").encode()), inputs=_inputs(args))
        if not to_stdout:
            print(f"confusion matrix (rows true, columns predicted) -> {args.confusion}")
    return 0


def cmd_predict(args) -> int:
    from .checkpoint import load
    from .evaluation import predict_proba
    from .images import load_digit

    model, _, _ = load(args.checkpoint)
    _check_takes_digits(model, args.checkpoint)
    probs = predict_proba(model, load_digit(args.image)[None])[0]
    print(f"{args.image}: {probs.argmax()} ({probs.max():.1%})")
    for digit, p in enumerate(probs):
        print(f"  {digit}: {p:6.2%} {'█' * round(p * 40)}")
    return 0


def cmd_backprop(args) -> int:
    from . import walkthrough
    from .backprop import Names
    from .demos import GRAPHS, TENSOR_GRAPHS
    from .expr import ExprError, graph
    from .graph import toposort

    if (args.demo is None) == (args.expr is None):
        raise UserError("give exactly one of a DEMO (" + ", ".join(GRAPHS) + ") or --expr \"...\"")
    if args.all and args.quiz:
        raise UserError("--all prints every step, --quiz asks for each gradient first: give one of them")
    if args.format is not None and not args.frames:
        raise UserError(f"--format {args.format} is the format of --frames' pictures: give --frames DIR too")
    args.format = args.format or "svg"
    if args.demo != "3b1b-digit" and (args.checkpoint or args.digit is not None or args.data_dir):
        raise UserError("--checkpoint, --digit and --data-dir choose the network and digit of 3b1b-digit")
    if _html_to_stdout(args) and (args.all or args.quiz or args.mirror):
        raise UserError("--html - writes the page to standard output, so it takes no --all, --quiz or --mirror; "
                        "give --html a file name to have both")
    if args.demo in TENSOR_GRAPHS:
        return _backprop_tensors(args)
    if args.mirror:
        raise UserError("--mirror is for the Tensor walk-throughs (seed-layer): a Value graph is scalar already")
    if args.expr is not None:
        values = {}
        for item in args.set:
            name, sep, number = item.partition("=")
            name = name.strip()
            if name in values:
                raise UserError(f"--set gives {name} more than once; give each name one value")
            try:
                values[name] = value = float(number)
            except ValueError:
                raise UserError(f"--set takes NAME=NUMBER, got {item!r}") from None
            if not sep or not name.isidentifier():
                raise UserError(f"--set takes NAME=NUMBER, got {item!r}")
            if not math.isfinite(value):
                raise UserError(f"--set {item}: give a finite number (a walk-through of {value} is all {value}s)")
        try:
            root, named = graph(args.expr, **values)
        except (ArithmeticError, ValueError) as e:
            if isinstance(e, ExprError):
                raise
            raise UserError(f"the forward pass fails at these values: {e}") from None
        used = {id(node) for node in toposort(root)}
        unused = [name for name in values if id(named[name]) not in used]
        if unused:
            leaves = sorted(name for name, node in named.items() if id(node) in used and node.op is None)
            them = "it" if len(unused) == 1 else "them"
            raise UserError(f"--set {', '.join(unused)}: the result does not depend on {them}; "
                            f"the names it depends on are {', '.join(leaves) or 'none'}")
        title = args.expr
    else:
        root, title = GRAPHS[args.demo](), args.demo
    if root.op is None:
        raise UserError("the expression is a single number: there is nothing to backpropagate through")
    names = Names(root)
    try:
        intro, frames = walkthrough.frames(root)
    except (ArithmeticError, ValueError) as e:  # e.g. the slope of x**0.5 at x = 0
        raise UserError(f"a derivative is undefined at these values: {e}") from None
    if args.frames or args.html:
        from viz import stepper_page

        if args.frames:
            _check_frames_folder(args.frames, len(frames))
            paths = stepper_page.write_frames(root, frames, args.frames, args.format)
            print(f"wrote {len(paths)} pictures to {args.frames}/ (step-001.{args.format} …)",
                  file=sys.stderr if _html_to_stdout(args) else sys.stdout)
        if args.html:
            stepper_page.write(args.html, f"backprop: {title}", root, intro, frames)
            if _html_to_stdout(args):
                return 0
            print(f"wrote {args.html}: open it in a browser; ← → step through, click a node for its chain rule")
    if args.quiz:
        walkthrough.quiz(intro, frames, names[root], names)
    elif args.all or not sys.stdin.isatty():
        if not (args.frames or args.html) or args.all:
            print(intro)
            for frame in frames:
                print("\n" + frame.text)
    else:
        walkthrough.interactive(intro, frames)
    return 0


def _check_frames_folder(folder: Path, steps: int) -> None:
    """Refuse a --frames folder that holds more step pictures than this walk-through will write: the new ones
    would replace only the first of them, leaving a set that mixes two graphs."""
    if not folder.is_dir():
        return
    beyond = sorted(p.name for p in folder.glob("step-*.*") if p.stem[5:].isdigit() and int(p.stem[5:]) > steps)
    if beyond:
        raise UserError(f"--frames {folder} already holds {beyond[0]}{' …' * (len(beyond) > 1)} from a walk-through "
                        f"of more than this one's {steps} steps; give an empty folder or delete them")


def _html_to_stdout(args) -> bool:
    return _to_stdout(args.html)


def _to_stdout(path) -> bool:
    """Whether an output option was given as `-`, standard output."""
    from .files import STDOUT

    return path is not None and str(path) == STDOUT


def _backprop_tensors(args) -> int:
    """`backprop seed-layer`: the Tensor engine's steps, whole matrices at a time, and the scalar mirror."""
    from . import tensor_steps, walkthrough
    from .demos import TENSOR_GRAPHS

    if args.frames or args.expr:
        raise UserError(f"{args.demo} steps through matrices: --all, step by step, --quiz, --html FILE or "
                        "--mirror NAME[i,j] (--frames draws Value graphs)")
    if args.demo == "3b1b-digit":
        demo = _three_b1b_demo(args)
    else:
        demo = TENSOR_GRAPHS[args.demo]()
    entry = None
    if args.mirror:
        try:
            name, index = tensor_steps.parse_entry(args.mirror)
        except ValueError as e:
            raise UserError(str(e)) from None
        tensor = demo.tensors.get(name)
        if tensor is None or not tensor.requires_grad:
            have = ", ".join(f"{n} {t.shape}" for n, t in demo.tensors.items() if t.requires_grad)
            raise UserError(f"--mirror {args.mirror}: {args.demo} has no gradient named {name!r}; choose one of {have}")
        if len(index) != tensor.ndim or any(not 0 <= i < n for i, n in zip(index, tensor.shape)):
            raise UserError(f"--mirror {args.mirror}: {name} has shape {tensor.shape}; "
                            f"indices run from 0 to {', '.join(str(n - 1) for n in tensor.shape)}")
        entry = (name, index)
    intro, frames = tensor_steps.frames(demo.loss)
    if args.html:
        from viz import stepper_page

        grads = {name: t.grad for name, t in demo.tensors.items() if t.grad is not None}
        mirrors = {key: tensor_steps.mirror_text(m) for key, m in
                   tensor_steps.mirror_all(grads, demo.scalar_loss()).items()}
        stepper_page.write(args.html, f"backprop: {args.demo}", demo.loss, intro, frames, mirrors)
        if _html_to_stdout(args):
            return 0
        print(f"wrote {args.html}: open it in a browser; ← → step through, click any entry for its scalar mirror")
        if not (args.all or entry or args.quiz):
            return 0
    if args.quiz:
        from .backprop import Names

        names = Names(demo.loss)
        walkthrough.tensor_quiz(intro, frames, names[demo.loss], names)
    elif args.all or not sys.stdin.isatty() or entry:
        print(intro)
        for frame in frames:
            print("\n" + frame.text)
    else:
        walkthrough.interactive(intro, frames)
    if entry:
        name, index = entry
        m = tensor_steps.mirror(demo.tensors[name].grad, name, index, demo.scalar_loss())
        print("\n" + tensor_steps.mirror_text(m))
    return 0


def _three_b1b_demo(args):
    from . import data
    from .demos import quick_3b1b, three_b1b_digit

    mnist = data.load("mnist", args.data_dir)
    index = 0 if args.digit is None else args.digit
    if index >= len(mnist.test_labels):
        raise UserError(f"--digit {index}: there are {len(mnist.test_labels):,} test images (0 to "
                        f"{len(mnist.test_labels) - 1})")
    if args.checkpoint is not None:
        from .checkpoint import load

        model = load(args.checkpoint)[0]
    else:
        print("(no --checkpoint: first a short built-in run of the 3b1b preset, 2 epochs)", file=sys.stderr)
        model = quick_3b1b(mnist.train_images, mnist.train_labels, log=lambda line: print(line, file=sys.stderr))
    try:
        demo = three_b1b_digit(model, mnist.test_images[index], int(mnist.test_labels[index]))
    except ValueError as e:
        raise UserError(f"{args.checkpoint}: {e}") from None
    note = sys.stderr if _html_to_stdout(args) else sys.stdout  # with --html -, standard output is the page alone
    print(f"(MNIST test image {index}, a {mnist.test_labels[index]})", file=note)
    return demo


def cmd_demo(args) -> int:
    from . import data, demos

    kwargs = {}
    if args.name == "single-neuron":
        try:
            mnist = data.load("mnist", args.data_dir, log=lambda message: None, download=False)
            kwargs["digit"] = mnist.test_images[0]
            print(f"(the 784-input neuron reads MNIST test image 0, a {mnist.test_labels[0]})")
        except data.DataError:
            if args.data_dir is not None or os.environ.get(data.ENV_VAR):  # a folder asked for by name is wrong
                raise
            print("(MNIST is not on this machine, so the 784-input neuron reads a drawn ring; "
                  "`micrograd-mnist train` fetches MNIST once)")
    demos.run(args.name, args.out, args.format, **kwargs)
    return 0


def cmd_plot(args) -> int:
    from . import plot_command

    return plot_command.run(args)


def _check_takes_digits(model, path: Path) -> None:
    if model.sizes[0] != 784 or model.sizes[-1] != 10:
        raise UserError(f"{path} is a {'-'.join(map(str, model.sizes))} network; evaluate and predict need "
                        "784 inputs (28×28 pixels) and 10 outputs (the classes)")


# The files each command reads, by argument name, and what it writes: no output may replace an input.
INPUTS = ("checkpoint", "image", "metrics", "resume")
FILE_OUTPUTS = {"evaluate": ("confusion",), "backprop": ("html",), "plot": ("out",)}
# What each file output holds, by its name's ending, so a slip (`--confusion best.npz`) never replaces a file of
# another kind (plot checks its own --out: .png, .svg or .pdf)
SUFFIXES = {"confusion": ("a CSV table", (".csv",)), "html": ("a web page", (".html", ".htm"))}
FOLDER_OUTPUTS = {"backprop": ("frames",), "demo": ("out",), "moons": ("out",)}  # and train's --out, once resolved


def _inputs(args) -> list[Path]:
    """The files the command reads: its arguments', and the IDX files of every folder data.load may read
    (--data-dir, $MICROGRAD_MNIST_DATA, the caches), whichever one it turns out to use."""
    from .data import FILES, folders

    paths = [getattr(args, name) for name in INPUTS if getattr(args, name, None) is not None]
    return paths + [folder / f"{name}{gz}" for folder in folders(getattr(args, "data_dir", None))
                    for name in FILES for gz in ("", ".gz")]


def _check_outputs(args) -> None:
    """Before any work: every output file must be a regular file (or new, or '-'), none of the command's
    inputs and no training run's own file; every output folder a real folder."""
    from .config import PRODUCTS
    from .files import FileError, check_output

    for name in FILE_OUTPUTS.get(args.command, ()):
        path = getattr(args, name, None)
        if path is not None:
            check_output(path, _inputs(args))
            if path.name in PRODUCTS and path.exists():  # only train writes those, and never over a run
                raise FileError(f"refusing to replace {path}: it is a training run's {path.name}; "
                                "give another file name")
            kind, endings = SUFFIXES.get(name, ("", ()))
            if endings and not _to_stdout(path) and path.suffix.lower() not in endings:
                raise UserError(f"--{name} {path}: it writes {kind}; give a {endings[0]} file name "
                                "(or - for standard output)")
    for name in FOLDER_OUTPUTS.get(args.command, ()):
        if getattr(args, name, None) is not None:
            _output_folder(getattr(args, name), f"--{name}")


def _output_folder(path: Path, option: str) -> None:
    """A folder we may write into: new, or a folder itself (not a symbolic link to one, not a file)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise UserError(f"{option} {path} is a symbolic link; give a folder itself (it points to "
                        f"{os.path.realpath(path)})")
    if not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else "a special file (a FIFO, socket or device)"
        raise UserError(f"{option} {path} is {kind}, not a folder; give a folder")


def cmd_moons(args) -> int:
    from . import moons
    from .files import check_output

    if args.out is not None:
        check_output(args.out / "moons.png")  # before the training, not after it
    run = moons.train(args.steps, args.seed)
    if args.out is not None:
        from viz import plots  # only now: training needs no matplotlib

        xx, yy, grid = moons.decision_grid(run.model, run.X)
        at_points = moons.scores(run.model, run.X)
        right = int(((at_points > 0) == (run.y > 0)).sum())
        path = plots.decision_boundary(xx, yy, grid, run.X, run.y, args.out / "moons.png", point_scores=at_points,
                                       title=f"micrograd's two moons after {args.steps} steps of SGD: "
                                             f"{right} of {len(run.y)} points classified right")
        print(f"wrote {path}")
    print(f"moons: training accuracy {run.accuracy:.0%} at step {args.steps} (before its update)")
    return 0


# What to do about the operating system's refusals a user meets, after its own words
OS_HINTS = {errno.EACCES: "; choose a folder you may write to", errno.EPERM: "; choose a folder you may write to",
            errno.EROFS: "; choose a folder on a writable disk",
            errno.ENOSPC: "; free some space or choose another disk",
            errno.ENOTDIR: "; part of the path is a file, not a folder", errno.ENAMETOOLONG: "; give a shorter name"}


def main(argv: list[str] | None = None) -> int:
    # A file name the terminal's encoding cannot show (bytes that are not UTF-8) prints escaped, rather than
    # raising UnicodeEncodeError after the work is done; the streams get their own setting back after.
    streams = [s for s in (sys.stdout, sys.stderr) if isinstance(s, io.TextIOWrapper) and not s.closed]
    before = [s.errors for s in streams]
    for s in streams:
        s.reconfigure(errors="backslashreplace")
    # SIGTERM (`kill`, a container stopping) unwinds like Ctrl-C, so a file being written is cleaned up rather
    # than its temp file left behind; train turns it into a checkpoint at the next batch boundary, as Ctrl-C
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal.signal works only there
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        return _main(argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        for s, errors in zip(streams, before):
            with contextlib.suppress(OSError, ValueError):  # reconfigure flushes: a pipe whose reader left
                s.reconfigure(errors=errors)


def _terminated(signum, frame) -> None:
    from .training import Terminated

    raise Terminated()


def _main(argv: list[str] | None) -> int:
    from viz import DrawError, PlotError

    from . import explore
    from .checkpoint import CheckpointError
    from .data import DataError
    from .expr import ExprError
    from .files import FileError
    from .images import ImageError
    from .training import Diverged, SettingsError, Terminated

    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "moons": cmd_moons,
                "backprop": cmd_backprop, "demo": cmd_demo, "plot": cmd_plot, "explore": explore.run}
    if args.command not in handlers:
        parser.print_help()
        return 0
    try:
        _check_outputs(args)
        return handlers[args.command](args)
    except (UserError, DataError, CheckpointError, ImageError, ExprError, DrawError, PlotError, FileError,
            SettingsError) as e:
        print(f"micrograd-mnist {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `micrograd-mnist evaluate ... | head`: the reader left, which is fine
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as e:  # a path that can't be used: a folder where a file should go, a full disk, and so on
        where = f" {e.filename}:" if e.filename else ""
        hint = OS_HINTS.get(e.errno, "")
        print(f"micrograd-mnist {args.command}:{where} {e.strerror or e}{hint}", file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"micrograd-mnist {args.command}: diverged: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # training saved a checkpoint first; 128 + the signal, as a shell reports it
        return 143 if isinstance(e, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
