"""The matplotlib pictures (viz.plots): each renders from synthetic data into a real, non-blank image of its size;
the numbers behind them (micrograd_mnist.analysis: gradients per layer, PCA + line) are checked directly; and
`plot` on the command line (micrograd_mnist.plot_command).
No network and no real MNIST: tiny models, synthetic images, IDX files written into tmp_path.
"""

from __future__ import annotations

import argparse
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from micrograd_mnist import analysis, checkpoint, data, plot_command
from micrograd_mnist.evaluation import confusion_matrix
from micrograd_mnist.nn import MLP
from viz import plots

SVG_ROOT = "{http://www.w3.org/2000/svg}svg"


@pytest.fixture
def captured(monkeypatch) -> list:
    """The Figures the picture functions save, so a test can look inside them; files are still written."""
    figures = []
    save = plots.save

    def capture(fig, path):
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "save", capture)
    return figures


@pytest.fixture(scope="module")
def model() -> MLP:
    return MLP([784, 16, 16, 10], "sigmoid", rng=np.random.default_rng(0))


def check_png(path: Path, figsize: tuple[float, float], min_std: float = 10.0) -> np.ndarray:
    """A PNG of figsize * DPI pixels that is not blank; its pixels (RGB) back."""
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(figsize[0] * plots.DPI), round(figsize[1] * plots.DPI))
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.std() > min_std, "the picture is (nearly) blank"
    return pixels


def texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    out.append(fig.get_suptitle())
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts] + [ax.get_title()]
    return out


def digits_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n sparse 784-pixel images in [0, 1] (mostly zeros, like MNIST) with random labels 0-9."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 784)) * (rng.random((n, 784)) < 0.15)).astype(np.float32)
    return images, rng.integers(0, 10, n)


# ---------------------------------------------------------------------------------------------------------------
# weights


def test_weights_png_has_its_size_and_a_picture(tmp_path, model):
    out = plots.weights(model, tmp_path / "w.png")
    assert out == tmp_path / "w.png"
    check_png(out, plots.weights_figsize(16))
    assert [p.name for p in tmp_path.iterdir()] == ["w.png"]  # the temp file was renamed, nothing left over


def test_weights_shows_up_to_32_neurons_or_the_ones_asked_for(tmp_path, captured):
    wide = MLP([784, 40, 10], rng=np.random.default_rng(1))
    check_png(plots.weights(wide, tmp_path / "a.png"), plots.weights_figsize(32))
    check_png(plots.weights(wide, tmp_path / "b.png", neurons=[3, 39]), plots.weights_figsize(2))
    titles = [ax.get_title() for ax in captured[1].axes if ax.get_title()]
    assert [t.split()[:2] for t in titles] == [["neuron", "3"], ["neuron", "39"]]
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        plots.weights(wide, tmp_path / "c.png", neurons=[40])
    with pytest.raises(ValueError, match="28x28"):
        plots.weights(MLP([10, 4, 2]), tmp_path / "d.png")


def test_weights_colours_positive_blue_negative_red_symmetric_around_zero(tmp_path, captured):
    net = MLP([784, 4, 10], rng=np.random.default_rng(0))
    w = np.zeros((784, 4), dtype=np.float32)
    w[0, 0], w[783, 0] = 0.5, -0.25  # pixel (0, 0) excites neuron 0, pixel (27, 27) inhibits it
    net[0].weight.data = w
    plots.weights(net, tmp_path / "w.png", neurons=1)
    image = captured[0].axes[0].get_images()[0]
    rgba = image.to_rgba(image.get_array())
    top_left, bottom_right, middle = rgba[0, 0], rgba[27, 27], rgba[14, 14]
    assert top_left[2] > 2 * top_left[0], f"a positive weight should be blue, got {top_left}"
    assert bottom_right[0] > 1.5 * bottom_right[2], f"a negative weight should be red, got {bottom_right}"
    assert middle[:3].min() > 0.9, f"a zero weight should be (near) white, got {middle}"
    assert image.norm.vmin == -image.norm.vmax == -0.5
    assert any("blue pixels excite, red inhibit" in t for t in texts(captured[0]))


# ---------------------------------------------------------------------------------------------------------------
# curves


METRICS = {"train_loss": [0.9, 0.5, 0.35, 0.3], "val_accuracy": [0.81, 0.87, 0.9, 0.91], "test_accuracy": 0.915,
           "config": {"sizes": [784, 16, 16, 10], "activation": "sigmoid", "preset": "3b1b"}}


def test_curves_png_notes_the_test_accuracy(tmp_path, captured):
    check_png(plots.curves(METRICS, tmp_path / "c.png"), plots.FIGSIZE["curves"])
    fig = captured[0]
    assert "test accuracy 91.50%" in fig.get_suptitle()
    loss_axes, accuracy_axes = fig.axes
    assert list(loss_axes.lines[0].get_xdata()) == [1, 2, 3, 4]  # epochs count from 1
    assert list(accuracy_axes.lines[0].get_ydata()) == pytest.approx([81, 87, 90, 91])
    assert accuracy_axes.lines[1].get_ydata()[0] == pytest.approx(91.5)  # the test accuracy line


def test_curves_svg_is_xml_and_bad_metrics_are_refused(tmp_path):
    out = plots.curves({"train_loss": [1.0], "val_accuracy": [0.5]}, tmp_path / "c.svg")
    assert ET.parse(out).getroot().tag == SVG_ROOT
    with pytest.raises(ValueError, match="val_accuracy"):
        plots.curves({"train_loss": [1.0]}, tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()


# ---------------------------------------------------------------------------------------------------------------
# confusion, mistakes


def test_confusion_heatmap_writes_every_count(tmp_path, captured):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    predicted = np.where(rng.random(400) < 0.8, labels, rng.integers(0, 10, 400))
    counts = confusion_matrix(predicted, labels)
    check_png(plots.confusion(counts, tmp_path / "m.png"), plots.FIGSIZE["confusion"])
    cells = [t.get_text() for t in captured[0].axes[0].texts]
    assert sorted(cells) == sorted(str(n) for n in counts.flat)
    assert f"{np.trace(counts)} of 400" in captured[0].get_suptitle()
    with pytest.raises(ValueError, match="square"):
        plots.confusion(np.zeros((3, 4), dtype=int), tmp_path / "n.png")


def test_mistakes_titles_pred_and_true_of_the_misclassified_only(tmp_path, captured):
    images, labels = digits_like(50)
    predicted = labels.copy()
    wrong = [2, 11, 30]
    predicted[wrong] = (labels[wrong] + 1) % 10
    check_png(plots.mistakes(images, labels, predicted, tmp_path / "x.png", n=25), plots.FIGSIZE["mistakes"])
    fig = captured[0]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"pred {predicted[i]} / true {labels[i]}" for i in wrong]
    assert fig.get_suptitle().startswith("3 of 50 test images misclassified")


# ---------------------------------------------------------------------------------------------------------------
# separability


def two_clusters(separation: float, n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """'3's and '8's in 784-D: their means `separation` apart along one direction d, each class spread 0.5
    along d and 0.4 along a second direction, plus a little noise everywhere (so PCA finds d, then the other)."""
    rng = np.random.default_rng(seed)
    d, e = np.linalg.qr(rng.standard_normal((784, 2)))[0].T
    labels = np.repeat([3, 8], n // 2)
    along_d = np.where(labels == 8, separation, 0.0) + 0.5 * rng.standard_normal(n)
    images = along_d[:, None] * d + 0.4 * rng.standard_normal((n, 1)) * e + 0.01 * rng.standard_normal((n, 784))
    return images, labels


def test_project_and_fit_separates_most_but_not_all_of_overlapping_clusters():
    images, labels = two_clusters(separation=1.5)
    fit = analysis.project_and_fit(images, labels, n=300, seed=1)
    assert fit.points.shape == (300, 2) and fit.wrong.shape == (300,)
    assert (fit.labels == 3).sum() == (fit.labels == 8).sum() == 150
    assert 0 < fit.wrong.sum() < 0.2 * 300
    # the mask agrees with the line: wrong points are on the other digit's side
    says_8 = fit.points @ fit.w + fit.bias > 0
    assert np.array_equal(fit.wrong, says_8 != (fit.labels == 8))
    # and far-apart clusters are separated perfectly
    assert analysis.project_and_fit(*two_clusters(separation=6.0), n=300).wrong.sum() == 0


def test_separability_png_counts_the_points_on_the_wrong_side(tmp_path, captured):
    images, labels = two_clusters(separation=1.5)
    fit = analysis.project_and_fit(images, labels, n=200)
    check_png(plots.separability(fit, tmp_path / "s.png"), plots.FIGSIZE["separability"])
    assert 0 < fit.wrong.sum() and any(f"{fit.wrong.sum()} of 200 points on the wrong side" in t
                                       for t in texts(captured[0]))


def test_project_and_fit_refuses_a_set_without_two_images_of_each_digit():
    images, labels = two_clusters(separation=1.5)
    with pytest.raises(data.DataError, match="at least 2 images of digit 8, found 0"):
        analysis.project_and_fit(images[labels == 3], labels[labels == 3])
    with pytest.raises(ValueError, match="two different digits"):
        analysis.project_and_fit(images, labels, digits=(3, 3))


# ---------------------------------------------------------------------------------------------------------------
# vanishing


def test_sigmoid_gradients_vanish_toward_the_input_and_relu_gradients_far_less():
    sigmoid = analysis.layer_gradients("sigmoid", depth=8, width=32, seed=0)
    relu = analysis.layer_gradients("relu", depth=8, width=32, seed=0)
    assert sigmoid.shape == relu.shape == (8,)
    # measured at seed 0: sigmoid layer 1 / layer 8 ~ 9e-7 (about 7x smaller per layer), relu ~ 8e-3
    assert sigmoid[0] / sigmoid[-1] < 1e-4
    assert np.all(np.diff(np.log(sigmoid)) > np.log(3))  # every layer nearer the input gets 3x less, or worse
    assert relu[0] / relu[-1] > 1e-3
    assert (relu[0] / relu[-1]) / (sigmoid[0] / sigmoid[-1]) > 1000
    assert relu[:4].max() / relu[:4].min() < 10  # ReLU's gradients level off in the lower layers


def gradients(depth: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return tuple(analysis.layer_gradients(a, depth, width) for a in ("sigmoid", "relu"))


def test_vanishing_png(tmp_path, captured):
    check_png(plots.vanishing(*gradients(5, 16), tmp_path / "v.png", width=16), plots.FIGSIZE["vanishing"])
    ax = captured[0].axes[0]
    assert ax.get_yscale() == "log"
    assert [len(line.get_xdata()) for line in ax.lines] == [5, 5]
    assert captured[0].get_suptitle().startswith("Vanishing gradients at initialization: 5 layers of width 16,")


def test_vanishing_refuses_what_is_not_two_gradient_curves(tmp_path):
    for sigmoid, relu in (([1e-3, 1e-2], [1e-3]), ([1e-3], [1e-3]), ([1e-3, 0.0], [1e-3, 1e-2])):
        with pytest.raises(plots.PlotError, match="two positive 1-D arrays of one length"):
            plots.vanishing(np.array(sigmoid), np.array(relu), tmp_path / "v.png")
    with pytest.raises(ValueError, match="at least 2 Linear layers"):
        analysis.layer_gradients("relu", depth=1)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("depth", "width"), [(8, 32), (5, 16)])
def test_vanishing_words_match_the_numbers_drawn(tmp_path, captured, depth, width):
    sigmoid, relu = gradients(depth, width)
    plots.vanishing(sigmoid, relu, tmp_path / "v.png", width=width)
    ax = captured[0].axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), sigmoid)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), relu)

    def sig2(x: float) -> float:
        return float(f"{x:.2g}")

    def number(text: str) -> float:
        return float(text.replace(",", ""))

    caption = ax.get_title()
    shrink = sigmoid[1:] / sigmoid[:-1]
    low, high = re.search(r"shrinks ([\d.,]+)× to ([\d.,]+)× at every layer", caption).groups()
    assert (number(low), number(high)) == (sig2(shrink.min()), sig2(shrink.max()))
    assert np.all(shrink > 1)  # "at every layer" holds
    relu_lost = number(re.search(rf"layer 1 gets 1/([\d.,]+) of layer {depth}'s gradient", caption).group(1))
    assert relu_lost == sig2(relu[-1] / relu[0])
    assert "far less is lost" in caption and (sigmoid[-1] / sigmoid[0]) / (relu[-1] / relu[0]) >= 100
    half = depth // 2
    top = number(re.search(rf"From layer {depth} to layer {half} ReLU's gradient falls ([\d.,]+)×", caption).group(1))
    assert top == sig2(relu[-1] / relu[half - 1]) and relu[-1] > relu[half - 1]
    spread = re.search(rf"layers 1–{half} are within ([\d.]+)× of each other", caption).group(1)
    assert number(spread) == sig2(relu[:half].max() / relu[:half].min())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for text, g in zip(legend, (sigmoid, relu)):
        assert number(re.search(rf"is 1/([\d.,]+) of layer {depth}'s", text).group(1)) == sig2(g[-1] / g[0])


def test_vanishing_caption_says_only_what_the_numbers_show():
    steady = np.array([1e-4, 2e-4, 4e-4, 8e-4])  # doubles every layer
    caption = plots.vanishing_caption(np.array([1e-5, 1e-4, 1e-3, 1e-2]), steady)
    assert "shrinks 10× to 10× at every layer" in caption
    assert "so far less is lost: layer 1 gets 1/8 of layer 4's gradient" in caption  # against 1/1,000
    assert "From layer 4 to layer 2 ReLU's gradient falls 4×; layers 1–2 are within 2× of each other" in caption
    caption = plots.vanishing_caption(np.array([1e-3, 1e-4, 1e-2, 1e-1]), steady[::-1])
    assert "at every layer" not in caption and "layer 1 gets 1/100 of layer 4's gradient" in caption
    assert "so nothing is lost: layer 1 gets 8× layer 4's gradient" in caption
    assert "From layer 4 to layer 2 ReLU's gradient grows 4×" in caption
    caption = plots.vanishing_caption(np.array([1e-3, 1e-2, 1e-1]), np.array([1e-4, 1e-2, 1e-1]))
    assert "so no less is lost: layer 1 gets 1/1,000 of layer 3's gradient" in caption
    assert plots.two_digits(1127572.6) == "1,100,000" and plots.two_digits(5.857) == "5.9"
    assert plots.two_digits(13.99) == "14"


# ---------------------------------------------------------------------------------------------------------------
# decision boundary


def test_decision_boundary_colours_each_side_by_the_sign_of_the_scores(tmp_path, captured):
    xx, yy = np.meshgrid(np.linspace(-2, 2, 50), np.linspace(-1, 1, 30))
    scores = xx - 0.5  # class +1 right of x = 0.5
    X = np.array([[-1.5, 0.0], [1.5, 0.0], [0.0, 0.5]])
    y = np.array([-1, 1, 1])
    out = plots.decision_boundary(xx, yy, scores, X, y, tmp_path / "b.png", title="a test",
                                  point_scores=X[:, 0] - 0.5)
    pixels = check_png(out, plots.FIGSIZE["moons"])
    fig = captured[0]
    ax = fig.axes[0]
    assert fig.get_suptitle() == "a test"
    height = pixels.shape[0]

    def colour_at(x: float, y: float) -> np.ndarray:
        px, py = ax.transData.transform((x, y))
        return pixels[int(round(height - py)), int(round(px))]

    left, right = colour_at(-1.0, -0.8), colour_at(1.2, -0.8)  # away from the points and the legend
    assert left[0] > left[2] + 10, f"score < 0 should be a red region, got {left}"
    assert right[2] > right[0] + 10, f"score > 0 should be a blue region, got {right}"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "class −1: 1 point" in legend and "class +1: 2 points" in legend
    assert "on the wrong side: 1" in legend  # (0, 0.5) is class +1 with score −0.5
    assert "boundary: score = 0" in legend and "score = ±1 (the loss's margin)" in legend
    plots.decision_boundary(xx, yy, np.full(xx.shape, 0.5), X, y, tmp_path / "one-class.png")
    legend = [t.get_text() for t in captured[1].axes[0].get_legend().get_texts()]
    assert legend == ["class −1: 1 point", "class +1: 2 points"]  # no boundary, no margins, nothing circled
    with pytest.raises(ValueError, match="one 2-D shape"):
        plots.decision_boundary(xx, yy, scores[:, :3], X, y, tmp_path / "c.png")
    with pytest.raises(ValueError, match="-1 or \\+1"):
        plots.decision_boundary(xx, yy, scores, X, np.array([0, 1, 1]), tmp_path / "d.png")


def test_collapse_lines_png(tmp_path, captured):
    x = np.linspace(-3, 3, 61)
    linear = 2 * x - 1
    bent = np.maximum(x, 0)
    check_png(plots.collapse_lines(x, linear, linear, bent, tmp_path / "l.png", bends=[(0.0, 0.0)],
                                   closest=0.5 * x + 0.4), plots.FIGSIZE["collapse"])
    ax = captured[0].axes[0]
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), bent)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(f"misses by up to {np.abs(bent - (0.5 * x + 0.4)).max():.2f}" in t for t in legend)
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        plots.collapse_lines(x, linear[:5], linear, bent, tmp_path / "m.png")


# ---------------------------------------------------------------------------------------------------------------
# architecture, digit


def test_architecture_title_counts_parameters_and_elides_wide_layers(tmp_path, captured, model):
    check_png(plots.architecture(tmp_path / "a.png"), plots.FIGSIZE["architecture"])
    assert plots.parameter_count((784, 16, 16, 10)) == model.num_parameters() == 13002
    fig = captured[0]
    assert fig.get_suptitle() == "784 → 16 → 16 → 10 (13,002 parameters)"
    drawn = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert drawn == 8 + 3 + 16 + 16 + 10  # the 784 inputs as 8 circles and a 3-dot ellipsis
    assert any("776 more" in t for t in texts(fig))


def test_digit_prints_each_nonzero_activation(tmp_path, captured):
    image = np.zeros(784, dtype=np.float32)
    image[[100, 101, 400]] = [0.5, 1.0, 0.004]
    check_png(plots.digit(image, tmp_path / "d.png", label=7), plots.FIGSIZE["digit"])
    cells = [t.get_text() for t in captured[0].axes[0].texts]
    assert sorted(cells) == [".004", ".50", "1"]
    assert "A 7" in captured[0].get_suptitle()
    plots.digit(np.round(image * 255).astype(np.uint8), tmp_path / "e.png")  # raw uint8 pixels are fine too
    assert sorted(t.get_text() for t in captured[1].axes[0].texts) == [".004", ".50", "1"]  # 1/255, 128/255, 1
    with pytest.raises(ValueError, match="784"):
        plots.digit(np.zeros(100), tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.digit(image * 3, tmp_path / "g.png")


# ---------------------------------------------------------------------------------------------------------------
# formats


def test_format_comes_from_the_suffix(tmp_path, model):
    assert ET.parse(plots.architecture(tmp_path / "a.svg", (20, 5, 3))).getroot().tag == SVG_ROOT
    assert plots.architecture(tmp_path / "a.pdf", (20, 5, 3)).read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        plots.weights(model, tmp_path / "w.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.svg"]


# ---------------------------------------------------------------------------------------------------------------
# micrograd-mnist plot


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="micrograd-mnist")
    plot_command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["plot", *map(str, argv)])


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A finished training run: model.npz and metrics.json."""
    out = tmp_path / "run"
    out.mkdir()
    checkpoint.save(out / "model.npz", MLP([784, 12, 10], "relu", rng=np.random.default_rng(0)),
                    {"config": {"dataset": "mnist"}})
    (out / "metrics.json").write_text(json.dumps(METRICS))
    return out


@pytest.fixture
def data_dir(tmp_path) -> Path:
    folder = tmp_path / "idx"
    images, labels = digits_like(200, seed=3)
    pixels = np.round(images * 255).astype(np.uint8).reshape(-1, 28, 28)
    for name, array in zip(data.FILES, (pixels[:50], labels[:50], pixels, labels)):
        data.write_idx(folder / name, array.astype(np.uint8))
    return folder


def test_plot_writes_kind_png_in_the_current_folder(tmp_path, monkeypatch, capsys, captured):
    monkeypatch.chdir(tmp_path)
    assert plot_command.run(parse("architecture")) == 0
    assert capsys.readouterr().out == "wrote architecture.png\n"
    check_png(tmp_path / "architecture.png", plots.FIGSIZE["architecture"])
    assert captured[0].get_suptitle().startswith("784 → 16 → 16 → 10 ")


def test_plot_with_a_checkpoint(tmp_path, run_dir, data_dir, capsys, captured):
    ckpt = run_dir / "model.npz"
    plot_command.run(parse("architecture", ckpt, "--out", tmp_path / "a.png"))
    assert captured[-1].get_suptitle() == "784 → 12 → 10 (9,550 parameters)"
    plot_command.run(parse("weights", ckpt, "--out", tmp_path / "w.svg"))
    assert ET.parse(tmp_path / "w.svg").getroot().tag == SVG_ROOT
    plot_command.run(parse("curves", ckpt, "--out", tmp_path / "c.png"))  # metrics.json beside the checkpoint
    assert "91.50%" in captured[-1].get_suptitle()
    for kind in ("confusion", "mistakes"):
        plot_command.run(parse(kind, ckpt, "--data-dir", data_dir, "--out", tmp_path / f"{kind}.png"))
        check_png(tmp_path / f"{kind}.png", plots.FIGSIZE[kind])
    assert "of 200 test images" in captured[-1].get_suptitle()
    assert capsys.readouterr().out.count("wrote ") == 5


def test_plot_with_the_data_only(tmp_path, data_dir, captured):
    plot_command.run(parse("digit", "--data-dir", data_dir, "--index", 5, "--out", tmp_path / "d.png"))
    labels = data.read_idx(data_dir / data.FILES[3])
    assert f" {labels[5]} as the network sees it" in captured[-1].get_suptitle()
    plot_command.run(parse("separability", "--data-dir", data_dir, "--out", tmp_path / "s.png"))
    check_png(tmp_path / "s.png", plots.FIGSIZE["separability"])


def relu_gradients_by_hand(depth: int, width: int, seed: int = 0, batch: int = 64) -> np.ndarray:
    """Mean |dL/dW| per layer of analysis.layer_gradients' network (same init, same random batch), backprop
    written out in NumPy: dZ = (softmax − onehot) / n at the top, then dW = Aᵀ·dZ, dA = dZ·Wᵀ, dZ = dA ⊙ [Z > 0]."""
    rng = np.random.default_rng(seed)
    model = MLP([784] + [width] * (depth - 1) + [10], "relu", rng=rng)
    x, y = rng.random((batch, 784)).astype(np.float32), rng.integers(0, 10, batch)
    layers = [(m.weight.data.astype(np.float64), m.bias.data.astype(np.float64)) for m in model[::2]]
    inputs, zs, a = [], [], x.astype(np.float64)
    for i, (W, b) in enumerate(layers):
        inputs.append(a)
        zs.append(a @ W + b)
        a = np.maximum(zs[-1], 0) if i < len(layers) - 1 else zs[-1]
    e = np.exp(a - a.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) - np.eye(10)[y]) / batch
    grads = []
    for i in reversed(range(len(layers))):
        grads.append(np.abs(inputs[i].T @ dz).mean())
        if i:
            dz = (dz @ layers[i][0].T) * (zs[i - 1] > 0)
    return np.array(grads[::-1])


def test_plot_vanishing_draws_the_relu_gradients_of_the_network_it_names(tmp_path, captured):
    plot_command.run(parse("vanishing", "--out", tmp_path / "v.png"))
    np.testing.assert_allclose(captured[-1].axes[0].lines[1].get_ydata(), relu_gradients_by_hand(8, 32), rtol=1e-4)
    assert "8 layers of width 32" in captured[-1].get_suptitle()


def test_plot_user_mistakes_are_one_line_errors(tmp_path, run_dir, data_dir):
    cases = [
        (parse("nope"), ValueError, "unknown plot 'nope'"),
        (parse("weights"), ValueError, "needs a checkpoint"),
        (parse("weights", tmp_path / "missing.npz"), checkpoint.CheckpointError, "no checkpoint"),
        (parse("curves"), ValueError, "--metrics FILE"),
        (parse("curves", "--metrics", tmp_path / "none.json"), ValueError, "no metrics file"),
        (parse("vanishing", run_dir / "model.npz"), ValueError, "takes no CKPT"),
        (parse("digit", "--data-dir", tmp_path / "empty"), data.DataError, "no train-images"),
        (parse("digit", "--data-dir", data_dir, "--index", 200), ValueError, "out of range"),
        (parse("architecture", "--out", tmp_path / "a.gif"), ValueError, "cannot tell the picture format"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            plot_command.run(args)
        assert "\n" not in str(caught.value)
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.gif"))
