"""Pictures of MNIST networks with matplotlib: weights, training curves, errors, and why depth and nonlinearity matter.

Every picture is a function that takes data (or a model) and a path, renders a `matplotlib.figure.Figure`
(never pyplot, so there is no global state and no display is needed), writes the file atomically in the
format its suffix names (.png, .svg or .pdf) and returns the path. Sizes are fixed per kind (`FIGSIZE`,
inches, at `DPI`), so a PNG is always exactly `FIGSIZE[kind] * DPI` pixels.

Drawing only: the numbers come from the caller (`micrograd_mnist.evaluation` and `micrograd_mnist.analysis`
compute them; `micrograd_mnist.plot_command` is `micrograd-mnist plot KIND [CKPT] ...`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from micrograd_mnist.files import atomic_write

from .graph import PlotError

DPI = 144  # with sizes in 1/16 inch, figsize * DPI is a whole number of pixels exactly (no float rounding)
SUFFIXES = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
FIGSIZE = {  # inches; weights depends on how many neurons it shows, see weights_figsize
    "curves": (10.0, 4.25),
    "confusion": (7.0, 6.0),
    "mistakes": (7.0, 7.75),
    "separability": (7.5, 6.5),
    "vanishing": (8.0, 5.0),
    "architecture": (9.0, 6.0),
    "digit": (10.0, 10.5),
    "moons": (7.5, 5.5),
    "collapse": (8.0, 5.0),
}
BLUE, RED = "#2166ac", "#b2182b"  # the ends of RdBu: blue for positive / class A, red for negative / class B
LIGHT_BLUE, LIGHT_RED = "#d1e5f0", "#fddbc7"  # the same, pale enough for points to stand out on them


# ---------------------------------------------------------------------------------------------------------------
# Writing


def save(fig: Figure, path: str | Path) -> Path:
    """Write `fig` to `path` atomically, in the format its suffix names; the path back."""
    path = Path(path)
    fmt = picture_format(path)
    metadata = {"Date": None} if fmt == "svg" else {}  # no timestamp: the same picture gives the same file
    with matplotlib.rc_context({"svg.hashsalt": "micrograd-mnist"}):  # stable SVG ids, like the Date above
        atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=DPI, metadata=metadata))
    return path


def picture_format(path: Path) -> str:
    """The format `path`'s suffix names (png, svg or pdf); a PlotError for any other, before any slow work."""
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PlotError(f"cannot tell the picture format from {path.name!r}: end the file name in "
                         f"{', '.join(SUFFIXES)}")
    return fmt


def _figure(kind: str, figsize: tuple[float, float] | None = None) -> Figure:
    return Figure(figsize=figsize or FIGSIZE[kind], dpi=DPI, layout="constrained")


# ---------------------------------------------------------------------------------------------------------------
# weights


def weights_figsize(count: int) -> tuple[float, float]:
    """Inches of the weights picture for `count` neurons (4 columns up to 16 neurons, 8 beyond)."""
    cols, rows = _grid(count)
    return (1.5 * cols + 1.25, 1.5 * rows + 1.125)


def _grid(count: int) -> tuple[int, int]:
    cols = min(count, 4 if count <= 16 else 8)
    return cols, math.ceil(count / cols)


def first_layer_weights(model) -> np.ndarray:
    """(784, width): column j is what neuron j of the first hidden layer multiplies the pixels by."""
    w = np.asarray(model[0].weight.data)
    if w.ndim != 2 or w.shape[0] != 28 * 28:
        raise PlotError(f"weights draws 28x28 inputs, but this model's first layer takes {w.shape[0]} inputs")
    return w


def weights(model, path: str | Path, neurons: int | Sequence[int] | None = None) -> Path:
    """The first layer's weights, one 28x28 image per neuron.

    neurons: how many to show (the first N), or which (a list of indices); default all of them up to 32.
    Each image has its own symmetric colour scale ±max|w|, so every neuron's pattern is visible.
    """
    w = first_layer_weights(model)
    width = w.shape[1]
    if neurons is None:
        chosen = list(range(min(width, 32)))
    elif isinstance(neurons, (int, np.integer)):
        if not 1 <= neurons <= width:
            raise PlotError(f"neurons={neurons}: the first layer has {width} neurons")
        chosen = list(range(int(neurons)))
    else:
        chosen = [int(j) for j in neurons]
        if not chosen or not all(0 <= j < width for j in chosen):
            raise PlotError(f"neurons must be indices in [0, {width}), got {list(neurons)}")
    cols, rows = _grid(len(chosen))
    fig = _figure("weights", weights_figsize(len(chosen)))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, j in zip(axes.flat, chosen):
        image = w[:, j].reshape(28, 28)
        limit = float(np.abs(image).max()) or 1.0
        ax.imshow(image, cmap="RdBu", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"neuron {j}  ±{limit:.2g}", fontsize=9)
    shown = (f"all {width} neurons" if len(chosen) == width
             else f"{len(chosen)} of its {width} neurons")
    fig.suptitle(f"First layer of {_describe(model)}: {shown}", fontsize=12, fontweight="bold")
    bar = fig.colorbar(ScalarMappable(Normalize(-1, 1), "RdBu"), ax=axes, shrink=0.5, aspect=25, pad=0.02)
    bar.set_ticks([-1, 0, 1], labels=["−max\ninhibit", "0", "+max\nexcite"])
    bar.ax.tick_params(labelsize=8)
    fig.text(0.5, 0.005, "Each neuron as a pattern detector: blue pixels excite, red inhibit.\n"
             "Its input is the sum of pixel × weight; each image is scaled to its own ±max weight (in its title).",
             ha="center", va="bottom", fontsize=9, color="0.25")
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    return save(fig, path)


def _describe(model) -> str:
    sizes = getattr(model, "sizes", None)
    if not sizes:
        return type(model).__name__
    return "-".join(map(str, sizes)) + (f" {model.activation}" if getattr(model, "activation", "") else "")


# ---------------------------------------------------------------------------------------------------------------
# curves


def curves(metrics: dict, path: str | Path) -> Path:
    """Training loss and validation accuracy per epoch, from the metrics.json that training writes."""
    series = {}
    for key in ("train_loss", "val_accuracy"):
        values = metrics.get(key)
        if not isinstance(values, list) or not values:
            raise PlotError(f"the metrics have no {key!r} list; give the metrics.json that "
                             "`micrograd-mnist train` writes")
        series[key] = np.asarray(values, dtype=float)
    loss, val = series["train_loss"], series["val_accuracy"]
    test = metrics.get("test_accuracy")
    fig = _figure("curves")
    ax_loss, ax_acc = fig.subplots(1, 2)

    ax_loss.plot(np.arange(1, len(loss) + 1), loss, "o-", color=RED, ms=4)
    ax_loss.set(title="training loss (cross-entropy, mean over the epoch)", xlabel="epoch", ylabel="loss")
    ax_loss.set_ylim(bottom=0)

    epochs = np.arange(1, len(val) + 1)
    ax_acc.plot(epochs, val * 100, "o-", color=BLUE, ms=4, label="validation (images held out from training)")
    if isinstance(test, (int, float)):
        ax_acc.axhline(test * 100, color="0.3", ls="--", lw=1, label=f"test accuracy after training: {test:.2%}")
    ax_acc.set(title="validation accuracy after each epoch", xlabel="epoch", ylabel="accuracy")
    ax_acc.yaxis.set_major_formatter(PercentFormatter(decimals=1 if np.ptp(val) < 0.05 else 0))
    ax_acc.legend(loc="lower right", fontsize=8)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        ax.grid(alpha=0.3)
        ax.title.set_fontsize(10)

    config = metrics.get("config") or {}
    what = ""
    if config.get("sizes"):
        what = " of " + "-".join(map(str, config["sizes"])) + f" {config.get('activation', '')}".rstrip()
        if config.get("preset"):
            what += f" ({config['preset']} preset)"
    tail = f", test accuracy {test:.2%}" if isinstance(test, (int, float)) else ""
    fig.suptitle(f"Training{what}: {len(loss)} epoch{'s' * (len(loss) != 1)}{tail}", fontweight="bold")
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------------
# confusion


def confusion(counts: np.ndarray, path: str | Path) -> Path:
    """Annotated heatmap of counts[true, predicted]: correct answers in blue, mistakes in red by count."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.dtype.kind not in "iu":
        raise PlotError(f"confusion needs a square matrix of integer counts, got shape {counts.shape} "
                         f"dtype {counts.dtype}")
    k = len(counts)
    total, correct = counts.sum(), np.trace(counts)
    row_totals = counts.sum(axis=1)
    recall = np.divide(counts.diagonal(), row_totals, out=np.zeros(k), where=row_totals > 0)
    diagonal = np.eye(k, dtype=bool)
    errors = np.ma.masked_where(diagonal, counts)
    most = max(int(errors.max()) if errors.count() else 0, 1)

    fig = _figure("confusion")
    ax = fig.subplots()
    ax.imshow(np.ma.masked_where(~diagonal, np.ones((k, k))), cmap="Blues", vmin=0, vmax=1.6)
    image = ax.imshow(errors, cmap="Reds", vmin=0, vmax=most)
    for t in range(k):
        for p in range(k):
            n = int(counts[t, p])
            if t == p:
                color = "white"
            elif n == 0:
                color = "0.75"
            else:
                color = "white" if n > 0.6 * most else "black"
            ax.text(p, t, str(n), ha="center", va="center", fontsize=8 if n < 1000 else 7, color=color,
                    fontweight="bold" if t == p else "normal")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(k + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(k + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1)
    ax.tick_params(which="minor", length=0)
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(k), [f"{r:.1%}" for r in recall], fontsize=8, color="0.25")
    right.tick_params(length=0)
    right.set_ylabel("correct, per true digit", color="0.25")
    for axis in (ax, right):
        for side in axis.spines.values():
            side.set_visible(False)
    bar = fig.colorbar(image, ax=ax, shrink=0.7, pad=0.03)
    bar.set_label("mistakes (count)")
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    accuracy = correct / total if total else 0.0
    fig.suptitle(f"Confusion matrix: {correct:,} of {total:,} test images right ({accuracy:.2%})",
                 fontweight="bold")
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------------
# mistakes


def mistakes(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: str | Path, n: int = 25) -> Path:
    """A grid of the first `n` misclassified images, each titled 'pred X / true Y'."""
    images, labels, predicted = np.asarray(images), np.asarray(labels), np.asarray(predicted)
    if images.ndim != 2 or images.shape[1] != 28 * 28:
        raise PlotError(f"mistakes needs images of shape (N, 784), got {images.shape}")
    if not len(images) == len(labels) == len(predicted):
        raise PlotError(f"mistakes needs as many labels and predictions as images: {len(images)} images, "
                         f"{len(labels)} labels, {len(predicted)} predictions")
    if n < 1:
        raise PlotError(f"n must be positive, got {n}")
    wrong = np.flatnonzero(labels != predicted)
    shown = wrong[:n]
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    fig = _figure("mistakes")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i in zip(axes.flat, shown):
        ax.imshow(images[i].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"pred {predicted[i]} / true {labels[i]}", fontsize=9, color=RED)
        ax.text(27, 27, f"#{i}", ha="right", va="bottom", fontsize=6, color="0.5")
    if not len(wrong):
        axes.flat[len(axes.flat) // 2].text(0.5, 0.5, "no misclassified images", ha="center", va="center",
                                            transform=axes.flat[len(axes.flat) // 2].transAxes)
    which = "the first " if len(wrong) > len(shown) else ""
    fig.suptitle(f"{len(wrong):,} of {len(labels):,} test images misclassified ({len(wrong) / len(labels):.2%}); "
                 f"{which}{len(shown)} shown", fontweight="bold", fontsize=11)
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------------
# separability


def separability(fit: tuple, path: str | Path) -> Path:
    """Two digits in 2-D by PCA, coloured by class, with the best straight line and its mistakes marked.

    fit: the Projection (a NamedTuple) that micrograd_mnist.analysis.project_and_fit returns.
    """
    a, b = fit.digits
    fig = _figure("separability")
    ax = fig.subplots()
    pad = 0.05 * np.ptp(fit.points, axis=0)
    (x0, y0), (x1, y1) = fit.points.min(axis=0) - pad, fit.points.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    side = (gx * fit.w[0] + gy * fit.w[1] + fit.bias > 0).astype(float)
    ax.contourf(gx, gy, side, levels=[-0.5, 0.5, 1.5], colors=["#dbe9f6", "#f9dcd6"], alpha=0.6)
    if abs(fit.w[1]) > abs(fit.w[0]):  # w0 x + w1 y + bias = 0, through two of its points
        ends = [(x, -(fit.bias + fit.w[0] * x) / fit.w[1]) for x in (x0, x1)]
    else:
        ends = [(-(fit.bias + fit.w[1] * y) / fit.w[0], y) for y in (y0, y1)]
    ax.axline(*ends, color="black", lw=1.5, label="best straight line")
    for d, color, marker in ((a, BLUE, "o"), (b, RED, "s")):
        mine = fit.labels == d
        ax.scatter(*fit.points[mine].T, s=14, color=color, marker=marker, alpha=0.65, lw=0,
                   label=f"{d}s ({mine.sum()})")
    ax.scatter(*fit.points[fit.wrong].T, s=55, facecolors="none", edgecolors="black", lw=0.9,
               label=f"on the wrong side ({fit.wrong.sum()})")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(f"principal component 1 ({fit.explained[0]:.1%} of the variance)")
    ax.set_ylabel(f"principal component 2 ({fit.explained[1]:.1%} of the variance)")
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    m = len(fit.labels)
    ax.text(0.02, 0.02, f"best straight line (logistic regression):\n{fit.wrong.sum()} of {m} points on the wrong "
            f"side ({fit.wrong.mean():.1%})", transform=ax.transAxes, fontsize=9, va="bottom",
            bbox=dict(boxstyle="round", fc="white", ec="0.6", alpha=0.9))
    verdict = "are not linearly separable" if fit.wrong.any() else "are linearly separable"
    fig.suptitle(f"{m} test {a}s and {b}s, projected to 2-D by PCA, {verdict}", fontweight="bold", fontsize=11)
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------------
# vanishing


def vanishing(sigmoid: np.ndarray, relu: np.ndarray, path: str | Path, width: int | None = None) -> Path:
    """Gradient magnitude per layer at initialization, sigmoid against ReLU, on a log scale: the two
    arrays of micrograd_mnist.analysis.layer_gradients (first = next to the input), for a title `width`."""
    sigmoid, relu = np.asarray(sigmoid, dtype=float), np.asarray(relu, dtype=float)
    if sigmoid.ndim != 1 or sigmoid.shape != relu.shape or len(sigmoid) < 2 or not (sigmoid > 0).all() \
            or not (relu > 0).all():
        raise PlotError(f"vanishing needs two positive 1-D arrays of one length (at least 2 layers), got shapes "
                        f"{sigmoid.shape} and {relu.shape}")
    depth = len(sigmoid)
    fig = _figure("vanishing")
    ax = fig.subplots()
    layers = np.arange(1, depth + 1)
    for g, name, color, marker in ((sigmoid, "sigmoid", RED, "o"), (relu, "ReLU", BLUE, "s")):
        ax.semilogy(layers, g, marker=marker, color=color, lw=2,
                    label=f"{name}: layer 1's gradient is 1/{two_digits(g[-1] / g[0])} of layer {depth}'s")
    ax.set_xticks(layers, [f"{i}\n(input)" if i == 1 else f"{i}\n(output)" if i == depth else str(i)
                           for i in layers])
    ax.set_xlabel("Linear layer")
    ax.set_ylabel("mean |∂loss/∂W| (log scale)")
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(vanishing_caption(sigmoid, relu), fontsize=9, color="0.3")
    of_width = f" of width {width}" if width is not None else ""
    fig.suptitle(f"Vanishing gradients at initialization: {depth} layers{of_width}, one random batch",
                 fontweight="bold", fontsize=11)
    return save(fig, path)


def vanishing_caption(sigmoid: np.ndarray, relu: np.ndarray) -> str:
    """What the two curves of `vanishing` show, in three lines; each word that could be wrong is chosen
    by the numbers (the first is the input's layer, the last the output's), so the caption can't contradict them."""
    depth = len(sigmoid)
    shrink = sigmoid[1:] / sigmoid[:-1]  # per layer, towards the input
    lost_s, lost_r = sigmoid[-1] / sigmoid[0], relu[-1] / relu[0]
    lines = ["Each sigmoid multiplies the backward signal by σ′ ≤ 1/4: "
             + (f"here it shrinks {two_digits(shrink.min())}× to {two_digits(shrink.max())}× at every layer."
                if np.all(shrink > 1) else f"layer 1 gets {_share(lost_s)} layer {depth}'s gradient.")]
    how = ("nothing is lost" if lost_r <= 1 else "far less is lost" if lost_s / lost_r >= 100
           else "less is lost" if lost_r < lost_s else "no less is lost")
    lines.append(f"ReLU's slope is 1 where it is active, so {how}: layer 1 gets {_share(lost_r)} layer {depth}'s "
                 "gradient.")
    half = depth // 2
    top, spread = relu[-1] / relu[half - 1], relu[:half].max() / relu[:half].min()
    change = f"falls {two_digits(top)}×" if top >= 1 else f"grows {two_digits(1 / top)}×"
    lines.append(f"From layer {depth} to layer {half} ReLU's gradient {change}; "
                 f"layers 1–{half} are within {two_digits(spread)}× of each other.")
    return "\n".join(lines)


def _share(lost: float) -> str:
    """How much of the last layer's gradient the first gets, given last / first: '1/130 of' or '8×'."""
    return f"1/{two_digits(lost)} of" if lost >= 1 else f"{two_digits(1 / lost)}×"


def two_digits(x: float) -> str:
    """x to two significant digits, as a reader would say it: 5.9, 14, 130, 1,100,000."""
    rounded = float(f"{x:.2g}")
    return f"{rounded:,.0f}" if rounded >= 10 else f"{rounded:g}"


# ---------------------------------------------------------------------------------------------------------------
# decision boundary (micrograd's two moons)


def decision_boundary(xx: np.ndarray, yy: np.ndarray, scores: np.ndarray, X: np.ndarray, y: np.ndarray,
                      path: str | Path, title: str = "", point_scores: np.ndarray | None = None) -> Path:
    """A classifier's score over a grid as two coloured regions, and the labelled points on top, as in
    micrograd's demo: blue where the score is above 0 (class +1), red below (class −1).

    xx, yy, scores: (n, m) arrays, the score at each grid point (`np.meshgrid` order); X: (k, 2) points
    with labels y of −1 or +1. The boundary (score 0) is a solid line, the hinge loss's margins (±1) dashed.
    point_scores: the model's score at each point of X, if given; the points it gets wrong are circled.
    """
    xx, yy, scores, X, y = (np.asarray(a) for a in (xx, yy, scores, X, y))
    if not xx.shape == yy.shape == scores.shape or xx.ndim != 2:
        raise PlotError(f"decision_boundary needs xx, yy and scores of one 2-D shape, got {xx.shape}, "
                        f"{yy.shape} and {scores.shape}")
    if X.ndim != 2 or X.shape[1] != 2 or y.shape != (len(X),) or not np.isin(y, (-1, 1)).all():
        raise PlotError(f"decision_boundary needs points (k, 2) and k labels of -1 or +1, got {X.shape} and {y.shape}")
    fig = _figure("moons")
    ax = fig.subplots()
    ax.contourf(xx, yy, scores, levels=[-np.inf, 0, np.inf], colors=[LIGHT_RED, LIGHT_BLUE])
    boundary = scores.min() < 0 < scores.max()  # a model that says one class everywhere has no boundary to draw
    margins = scores.min() < -1 or scores.max() > 1
    if boundary:
        ax.contour(xx, yy, scores, levels=[0], colors="0.15", linewidths=1.5)
    if margins:
        ax.contour(xx, yy, scores, levels=[-1, 1], colors="0.4", linewidths=0.8, linestyles="--")
    for label, color, name in ((-1, RED, "class −1"), (1, BLUE, "class +1")):
        points = X[y == label]
        ax.scatter(points[:, 0], points[:, 1], s=36, color=color, edgecolor="black", lw=0.6, zorder=3,
                   label=f"{name}: {len(points)} point{'s' * (len(points) != 1)}")
    wrong = np.zeros(len(y), bool) if point_scores is None else (np.asarray(point_scores) > 0) != (y > 0)
    if wrong.any():  # circled: a point just across the boundary is hard to tell from one just inside
        ax.scatter(X[wrong, 0], X[wrong, 1], s=140, facecolor="none", edgecolor="black", lw=1.2, zorder=4,
                   label=f"on the wrong side: {int(wrong.sum())}")
    if boundary:  # contour lines make no legend entries of their own
        ax.plot([], [], color="0.15", lw=1.5, label="boundary: score = 0")
    if margins:
        ax.plot([], [], color="0.4", lw=0.8, ls="--", label="score = ±1 (the loss's margin)")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_aspect("equal")
    ax.set(xlim=(xx.min(), xx.max()), ylim=(yy.min(), yy.max()), xlabel="x₁", ylabel="x₂")
    ax.set_title("blue region: score > 0, the model says class +1;  red: score < 0, class −1",
                 fontsize=9, color="0.3")
    fig.suptitle(title or "Decision boundary", fontweight="bold", fontsize=11)
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------------
# collapse (the two-layer-collapse demo)


def collapse_lines(x: np.ndarray, two_layer: np.ndarray, collapsed: np.ndarray, relu: np.ndarray, path: str | Path,
                   bends: Sequence[tuple[float, float]] = (), closest: np.ndarray | None = None,
                   title: str = "") -> Path:
    """y against x for a network on one number: two stacked linear layers, the single layer they collapse to
    (drawn dashed on top: the same line), and the same layers with a ReLU between them.

    x and the y arrays are 1-D and of one length; bends: (x, y) points where the ReLU version bends;
    closest: the straight line nearest the ReLU version, at each x (drawn dotted, with its largest miss).
    """
    given = (x, two_layer, collapsed, relu) + (() if closest is None else (closest,))
    arrays = [np.asarray(a, dtype=float) for a in given]
    if any(a.ndim != 1 or len(a) != len(arrays[0]) for a in arrays):
        raise PlotError(f"collapse_lines needs 1-D arrays of one length, got shapes {[a.shape for a in arrays]}")
    x, two_layer, collapsed, relu = arrays[:4]
    fig = _figure("collapse")
    ax = fig.subplots()
    ax.plot(x, two_layer, color=BLUE, lw=5, alpha=0.45, label="two linear layers: y = (x·W1 + b1)·W2 + b2")
    ax.plot(x, collapsed, color="black", lw=1.5, ls="--", label="one layer: y = x·W + b, W = W1·W2, b = b1·W2 + b2")
    ax.plot(x, relu, color=RED, lw=2, label="two layers with ReLU between: y = ReLU(x·W1 + b1)·W2 + b2")
    if len(bends):
        bx, by = np.asarray(bends, dtype=float).T
        ax.scatter(bx, by, s=40, color=RED, edgecolor="black", zorder=3, label="bends: a hidden z crosses 0")
    if closest is not None:
        miss = np.abs(relu - arrays[4]).max()
        ax.plot(x, arrays[4], color="0.35", lw=1.2, ls=":",
                label=f"the closest straight line to the ReLU version: it misses by up to {miss:.2f}")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set(xlabel="x (the input, one number)", ylabel="y (the output)", xlim=(x.min(), x.max()))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8.5, framealpha=0.9)
    ax.set_title("without an activation, stacking adds nothing: any number of linear layers is one straight line",
                 fontsize=9, color="0.3")
    fig.suptitle(title or "Stacked linear layers collapse to one", fontweight="bold", fontsize=11)
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------------
# architecture


def parameter_count(sizes: Sequence[int]) -> int:
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:]))


def architecture(path: str | Path, sizes: Sequence[int] = (784, 16, 16, 10), activation: str | None = None,
                 max_drawn: int = 16) -> Path:
    """The network as circles and connections; a layer wider than `max_drawn` shows 4 + ⋮ + 4 neurons."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise PlotError(f"architecture needs at least two positive layer sizes, got {sizes}")
    fig = _figure("architecture")
    ax = fig.subplots()
    ax.set_axis_off()
    columns = []  # per layer: the y of each drawn neuron, and whether the middle is elided
    for size in sizes:
        if size <= max_drawn:
            columns.append((list((size - 1) / 2 - np.arange(size)), False))
        else:
            columns.append(([7.5, 6.5, 5.5, 4.5, -4.5, -5.5, -6.5, -7.5], True))
    top = max(max(ys) for ys, _ in columns)
    for i in range(len(sizes) - 1):
        for y0 in columns[i][0]:
            for y1 in columns[i + 1][0]:
                ax.plot([i, i + 1], [y0, y1], color="0.55", lw=0.4, alpha=0.4, zorder=1)
        n_in, n_out = sizes[i], sizes[i + 1]
        ax.text(i + 0.5, -top - 1.6, f"{n_in:,} × {n_out:,} weights\n+ {n_out:,} biases\n= {(n_in + 1) * n_out:,}",
                ha="center", va="top", fontsize=8, color="0.35")
    for i, (size, (ys, elided)) in enumerate(zip(sizes, columns)):
        last = i == len(sizes) - 1
        face = "#dbe9f6" if i == 0 else "#f9dcd6" if last else "white"
        ax.scatter(np.full(len(ys), i), ys, s=150, facecolor=face, edgecolor="0.15", lw=1, zorder=2)
        if elided:
            ax.scatter([i, i, i], [0.9, 0, -0.9], s=6, color="black", zorder=2)
            ax.text(i + 0.07, 0, f"{size - len(ys):,} more", ha="left", va="center", fontsize=8, color="0.35")
        if last and size == 10:
            for d, y in enumerate(ys):
                ax.text(i + 0.07, y, str(d), ha="left", va="center", fontsize=9)
        if i == 0:
            name, unit = "input layer", "pixels" if size == 784 else "inputs"
        elif last:
            name, unit = "output layer", "digits" if size == 10 else "outputs"
        else:
            name, unit = f"hidden layer {i}", f"{activation} neurons" if activation else "neurons"
        ax.text(i, top + 1.2, f"{name}\n{size:,} {unit}", ha="center", va="bottom", fontsize=10)
    ax.set_xlim(-0.4, len(sizes) - 1 + 0.4)
    ax.set_ylim(-top - 4.2, top + 3.2)
    arrows = " → ".join(map(str, sizes))
    fig.suptitle(f"{arrows} ({parameter_count(sizes):,} parameters)", fontweight="bold", fontsize=13)
    return save(fig, path)


# ---------------------------------------------------------------------------------------------------------------
# digit


def digit(image: np.ndarray, path: str | Path, label: int | None = None) -> Path:
    """One digit as its 28x28 grid of activations (0 black, 1 white), each nonzero value printed in its cell."""
    image = np.asarray(image)
    if image.size != 28 * 28:
        raise PlotError(f"digit needs 784 pixel values (28x28), got an array of shape {image.shape}")
    if image.dtype == np.uint8:
        image = image / 255.0
    image = image.reshape(28, 28).astype(np.float64)
    if image.min() < 0 or image.max() > 1:
        raise PlotError(f"digit needs activations in [0, 1], got values from {image.min():g} to {image.max():g}")
    fig = _figure("digit")
    ax = fig.subplots()
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for r, c in zip(*np.nonzero(image)):
        v = image[r, c]
        text = "1" if v >= 0.995 else f"{v:.3f}"[1:] if v < 0.01 else f"{v:.2f}"[1:]
        ax.text(c, r, text, ha="center", va="center", fontsize=6.5, color="black" if v > 0.5 else "white")
    ax.set_xticks(np.arange(28 + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(28 + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.3", lw=0.3)
    ax.set_xticks(range(0, 28, 4))
    ax.set_yticks(range(0, 28, 4))
    ax.tick_params(which="both", length=0, labelsize=8)
    what = "A digit" if label is None else f"An {label}" if label == 8 else f"A {label}"
    fig.suptitle(f"{what} as the network sees it: 28 × 28 = 784 input activations", fontweight="bold")
    ax.set_title(f"{np.count_nonzero(image)} pixels above 0, from black (0) to white (1)", fontsize=9, color="0.3")
    return save(fig, path)
