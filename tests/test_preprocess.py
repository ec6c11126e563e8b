"""vae.preprocess: any drawing or upload becomes a 28x28 input prepared the way MNIST was."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from harness.apptest import image_bytes
from vae.preprocess import (
    CENTRE,
    EmptyDrawingError,
    ImageDecodeError,
    open_image,
    to_mnist,
)


def seven(size=280, width=20, ink=255, background=0, offset=(0, 0)) -> np.ndarray:
    """A '7' drawn with a round pen, off-centre, on a square grey canvas (uint8)."""
    image = Image.new("L", (size, size), background)
    draw = ImageDraw.Draw(image)
    s, (dx, dy) = size / 280, offset
    points = [(60 * s + dx, 40 * s + dy), (200 * s + dx, 40 * s + dy), (110 * s + dx, 230 * s + dy)]
    draw.line(points, fill=ink, width=round(width * s), joint="curve")
    return np.asarray(image)


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(x.shape)
    return (rows * x).sum() / x.sum(), (cols * x).sum() / x.sum()


def bounding_box(x: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_a_drawn_stroke_lands_like_an_mnist_digit():
    x = to_mnist(seven(offset=(-40, 30)))
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    assert max(bounding_box(x)) == 20  # the longer side fills the 20x20 box, no more
    r, c = centre_of_mass(x)
    assert abs(r - CENTRE) <= 1 and abs(c - CENTRE) <= 1


def test_matches_mnist_digits_statistics(mnist):
    """A real test digit, enlarged 10x, comes back close to itself."""
    digit = mnist.test_images[0].numpy()
    big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC))
    x = to_mnist(big)
    assert np.abs(x - digit / 255.0).mean() < 0.05


def test_polarity_and_channels_do_not_matter():
    light = seven()
    reference = to_mnist(light)
    dark = 255 - light
    rgb = np.repeat(dark[:, :, None], 3, axis=2)
    transparent = np.zeros((280, 280, 4), np.uint8)
    transparent[:, :, 3] = light  # black ink on a transparent canvas: only alpha says where
    variants = {
        "dark on light": dark,
        "RGB": rgb,
        "RGBA opaque": np.dstack([rgb, np.full((280, 280), 255, np.uint8)]),
        "RGBA alpha ink": transparent,
        "grey [H,W,1]": light[:, :, None],
        "float 0-1": light / 255.0,
        "float 0-255": light.astype(np.float32),
        "uint16": light.astype(np.uint16) * 257,
        "PIL L": Image.fromarray(dark),
        "PIL RGB": Image.fromarray(rgb),
        "PIL P": Image.fromarray(rgb).convert("P"),
        "PIL LA": Image.fromarray(transparent).convert("LA"),
        "PIL I;16": Image.fromarray(light.astype(np.uint16) * 257),
        "PIL 1": Image.fromarray(light > 127),
    }
    for name, image in variants.items():
        np.testing.assert_allclose(to_mnist(image), reference, atol=0.02, err_msg=name)


def test_coloured_ink_on_grey_paper():
    paper = np.full((240, 240, 3), (200, 190, 170), np.uint8)  # beige, not white
    paper[seven(240) > 0] = (30, 40, 160)  # blue ink
    x = to_mnist(paper)
    assert x.max() == pytest.approx(1.0, abs=0.05) and max(bounding_box(x)) == 20


@pytest.mark.parametrize("canvas", [np.zeros((280, 280), np.uint8), np.full((50, 50, 3), 255, np.uint8),
                                    np.zeros((280, 280, 4), np.uint8)])
def test_no_ink_raises_empty_drawing(canvas):
    with pytest.raises(EmptyDrawingError):
        to_mnist(canvas)
    assert issubclass(EmptyDrawingError, ValueError)


def test_faint_noise_is_not_a_digit():
    noise = np.random.default_rng(0).integers(0, 12, (280, 280)).astype(np.uint8)  # < 5% contrast
    with pytest.raises(EmptyDrawingError):
        to_mnist(noise)


def test_one_dot_becomes_a_centred_blob():
    canvas = np.zeros((280, 280), np.uint8)
    canvas[30:45, 250:265] = 255
    x = to_mnist(canvas)
    assert bounding_box(x) == (20, 20)
    assert centre_of_mass(x) == pytest.approx((CENTRE, CENTRE), abs=1)
    tiny = np.zeros((28, 28), np.uint8)
    tiny[0, 27] = 255  # one pixel in a corner
    assert to_mnist(tiny).sum() > 0


def test_full_canvas_is_all_ink_when_the_ink_colour_is_known():
    full = np.full((280, 280, 4), 255, np.uint8)  # white everywhere, opaque
    x = to_mnist(full, ink="light")
    assert bounding_box(x) == (20, 20) and x.min() == 0 and x[4:24, 4:24].min() > 0.99
    with pytest.raises(EmptyDrawingError):  # without knowing the ink, one colour is no drawing
        to_mnist(full)


def test_ink_touching_the_borders():
    canvas = np.zeros((280, 280), np.uint8)
    canvas[:, 0:25] = 255  # a bar along the whole left edge
    canvas[0:25, :100] = 255  # and along part of the top
    x = to_mnist(canvas)
    assert max(bounding_box(x)) == 20
    assert centre_of_mass(x) == pytest.approx((CENTRE, CENTRE), abs=1)
    np.testing.assert_allclose(to_mnist(255 - canvas), x, atol=1e-6)


def test_huge_and_wide_images():
    huge = seven(3000)
    np.testing.assert_allclose(to_mnist(huge), to_mnist(seven()), atol=0.15)
    strip = np.zeros((40, 5000), np.uint8)
    strip[18:22, 100:4000] = 255  # a horizontal line in a wide strip
    x = to_mnist(strip)
    assert bounding_box(x)[1] == 20


def test_rejects_arrays_that_are_not_images():
    for bad in (np.zeros((5, 5, 7)), np.zeros(10), np.zeros((0, 3))):
        with pytest.raises(ValueError):
            to_mnist(bad)
    with pytest.raises(ValueError, match="ink must be"):
        to_mnist(seven(), ink="blue")


# ---------------------------------------------------------------- uploads


def test_open_image_reads_png_jpeg_16bit_palette():
    drawing = Image.fromarray(255 - seven())
    reference = to_mnist(drawing)
    for name, data in {
        "png": image_bytes(drawing),
        "jpeg": image_bytes(drawing.convert("RGB"), "JPEG"),
        "16-bit png": image_bytes(Image.fromarray((255 - seven()).astype(np.uint16) * 257)),
        "palette png": image_bytes(drawing.convert("P")),
        "LA png": image_bytes(drawing.convert("LA")),
    }.items():
        image = open_image(data)
        assert isinstance(image, Image.Image), name
        assert np.abs(to_mnist(image) - reference).mean() < 0.01, name  # JPEG blurs edges a little


def test_open_image_explains_bad_files():
    with pytest.raises(ImageDecodeError, match="empty"):
        open_image(b"")
    with pytest.raises(ImageDecodeError, match="not an image"):
        open_image(b"%PDF-1.4 this is a document")
    with pytest.raises(ImageDecodeError, match="damaged or truncated"):
        open_image(image_bytes(Image.fromarray(seven()))[:400])
    with pytest.raises(ImageDecodeError, match="too large"):
        open_image(image_bytes(Image.new("L", (100, 100))), max_pixels=5_000)


def test_open_image_refuses_more_than_the_pixel_limit():
    # 5100 x 5000 one-bit pixels: a few KB of PNG, 25.5 megapixels once decoded.
    data = image_bytes(Image.new("1", (5100, 5000)))
    with pytest.raises(ImageDecodeError, match="too large"):
        open_image(data)


def _redrawn(digit: np.ndarray, radius: float) -> np.ndarray:
    """An MNIST digit on a 280 px canvas in a pen |radius| px broader (> 0) or finer (< 0)."""
    from PIL import Image
    from scipy import ndimage

    big = np.asarray(Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR)) >= 128
    big = np.pad(big, 40)
    if radius > 0:
        pen = ndimage.distance_transform_edt(~big) <= radius
    else:
        pen = ndimage.distance_transform_edt(big) > -radius
    return (pen * 255).astype(np.uint8)


@pytest.mark.parametrize("radius", [-6, 10])
def test_pen_normalisation_restores_the_stroke_width(mnist, radius):
    from vae.preprocess import MNIST_STROKE, stroke_width

    widths = np.array([stroke_width(x / 255.0) for x in mnist.test_images[:300].numpy()])
    index = int(np.flatnonzero((widths > MNIST_STROKE[0]) & (widths < MNIST_STROKE[1]))[0])
    original = mnist.test_images[index].numpy()
    drawing = _redrawn(original, radius)
    as_drawn = stroke_width(to_mnist(drawing, ink="light", pen=False))
    normalised = stroke_width(to_mnist(drawing, ink="light"))
    assert abs(as_drawn - widths[index]) > 0.7  # the pen really is another width
    assert abs(normalised - widths[index]) <= 1.0
