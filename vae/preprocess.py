"""Turn a drawing, scan or upload into a 28x28 input the way MNIST's digits were made.

MNIST's recipe (LeCun et al.): the digit's bounding box is scaled to fit a 20x20 box keeping
its aspect ratio, anti-aliased (hence grey levels), then placed in a 28x28 field so that its
centre of mass sits at the centre. Ink is 1.0 on a 0.0 background. A model trained on MNIST
only understands inputs prepared the same way, so a digit drawn in a corner of a big canvas
must be cropped, scaled and centred before it is encoded. One step is ours: MNIST's pen drew
strokes 2-3 px wide in the 28x28 field, whatever the digit's size, so a drawing whose strokes
would end up much thinner or thicker after scaling is first thickened or thinned to match
(``normalise_pen``); the model then judges the digit's shape, not the pen.

A model of another dataset takes an upload as ``vae.datasets`` read that set's images, whole:
``to_model_form`` gives each model its form, MNIST's recipe for MNIST.

Contract: ``to_mnist`` returns a float32 (28, 28) array or raises ``EmptyDrawingError`` (a
ValueError) when there is no ink to see; ``open_image`` raises ``ImageDecodeError`` (a
ValueError) with a message a user can act on. Any other ValueError means a programming error
(an array of an unsupported shape).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .data import DatasetInfo
from .datasets import image_in_form

SIZE = 28  # the MNIST field
BOX = 20  # the digit's bounding box is scaled to fit this square
CENTRE = 14.0  # MNIST test digits' mean centre of mass, in pixel-index coordinates (row, col)
MIN_INK = 0.1  # contrast below this (fraction of full scale) counts as no ink / noise
MAX_PIXELS = 25_000_000  # uploads beyond this (e.g. 5000x5000) are refused before decoding
MAX_SIDE = 1024  # larger images are block-averaged down first: the digit ends up 20 px anyway
# The middle half of MNIST's stroke widths in the 28x28 field (its training digits' 25th to 75th
# percentile by ``stroke_width``, bench/pen.py): a drawing's strokes are moved into this range.
MNIST_STROKE = (2.2, 2.9)
PEN_RESOLUTION = 200  # the pen is measured and changed with the digit's longer side at least this
BLOB = 0.5  # ink wider than this share of the box is a filled shape, not strokes: its pen is left alone

# PIL's own decompression-bomb guard, set to our limit (it refuses images over twice this).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class EmptyDrawingError(ValueError):
    """The image has no ink to recognise (blank canvas, a single colour)."""


class ImageDecodeError(ValueError):
    """Uploaded bytes are not an image we can use; the message says why."""


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode uploaded bytes (PNG, JPEG, ...) into a loaded PIL image, upright per its EXIF tag."""
    if not data:
        raise ImageDecodeError("The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"The image is too large ({width}x{height} pixels); "
                    f"the limit is {max_pixels / 1e6:.0f} megapixels."
                )
            image.load()
    except UnidentifiedImageError:
        raise ImageDecodeError("The file is not an image we can read (use PNG or JPEG).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageDecodeError(f"The image is too large; the limit is {max_pixels / 1e6:.0f} megapixels.") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageDecodeError):
            raise
        raise ImageDecodeError(f"The image file is damaged or truncated ({e}).") from None
    return ImageOps.exif_transpose(image)


def to_mnist(image, ink: str = "auto", pen: bool = True) -> np.ndarray:
    """An MNIST-style float32 (28, 28) array in [0, 1] from a PIL image or a numpy array
    (grey [H,W] or [H,W,1], grey+alpha [H,W,2], RGB, RGBA; uint8, uint16, bool or float).

    ``ink``: "auto" reads the background from the image border (light ink on dark or dark on
    light, on any plain background); "light"/"dark" state the ink colour on a pure black/white
    background, which is what a drawing canvas gives (and makes a fully painted canvas all ink).
    ``pen``: move the stroke width into MNIST's range (``normalise_pen``); False keeps the pen as
    drawn. Raises EmptyDrawingError when no ink stands out."""
    if ink not in ("auto", "light", "dark"):
        raise ValueError(f"ink must be 'auto', 'light' or 'dark', got {ink!r}")
    ink_map = _ink(_shrink(_as_array(image)), ink)
    if ink_map.max() < MIN_INK:
        raise EmptyDrawingError("No ink found: draw or upload a digit.")
    ink_map = ink_map / ink_map.max()
    ink_map[ink_map < MIN_INK] = 0.0  # paper texture and compression noise
    digit = _crop(ink_map)
    return _centre(_fit_box(normalise_pen(digit) if pen else digit))


def to_model_form(image, info: DatasetInfo) -> np.ndarray:
    """An upload (any image ``to_mnist`` takes) as a model of the dataset ``info`` takes it, float32
    in [0, 1]: MNIST's recipe (``to_mnist``) for MNIST; for any other set, by the very conversion
    ``vae.datasets`` read that set's images with (``image_in_form``): the whole image fitted and
    centred on the set's background, grayscale [size, size] or colour [3, size, size]."""
    if info.key == "mnist":
        return to_mnist(image)
    if not isinstance(image, Image.Image):  # an array: as 8-bit pixels, the form a dataset's files have
        image = Image.fromarray(np.rint(_shrink(_as_array(image)) * 255).astype(np.uint8))
    return image_in_form(image, info)


def drawing_to_model_form(image, info: DatasetInfo) -> np.ndarray:
    """A drawing (light ink on a black canvas) as a grayscale model of ``info`` takes it: MNIST's
    recipe for MNIST; for another set, the ink cropped to its bounding box (as the set's images fill
    their frame, a small drawing should too), in the set's ink on its background, then as
    ``to_model_form``. Raises EmptyDrawingError when nothing is drawn."""
    if info.key == "mnist":
        return to_mnist(image, ink="light")
    ink_map = _ink(_shrink(_as_array(image)), "light")
    if ink_map.max() < MIN_INK:
        raise EmptyDrawingError("No ink found: draw something.")
    ink_map[ink_map < MIN_INK] = 0.0
    drawn = _crop(ink_map)
    return to_model_form(1.0 - drawn if info.background == "white" else drawn, info)


# ---------------------------------------------------------------- steps


def _as_array(image) -> np.ndarray:
    """A numpy array [H, W] or [H, W, C] with C in 1..4, from PIL (any mode) or numpy."""
    if isinstance(image, Image.Image):
        if image.mode in ("P", "PA", "RGBa", "La") or (image.mode not in _NUMPY_MODES and "A" in image.getbands()):
            image = image.convert("RGBA")  # palettes may carry transparency
        elif image.mode not in _NUMPY_MODES:
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
        image = np.asarray(image)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and 2 <= a.shape[2] <= 4)) or a.size == 0:
        raise ValueError(f"expected an image array [H, W] or [H, W, 1-4], got shape {a.shape}")
    if a.dtype.kind not in "buif":
        raise ValueError(f"expected numeric image data, got dtype {a.dtype}")
    return a


_NUMPY_MODES = ("1", "L", "LA", "RGB", "RGBA", "I", "I;16", "I;16L", "I;16B", "F")


def _shrink(a: np.ndarray) -> np.ndarray:
    """Block-average huge images so no side exceeds MAX_SIDE; returns float32 in [0, 1]."""
    factor = -(-max(a.shape[:2]) // MAX_SIDE)
    scale = _full_scale(a)
    if factor > 1:
        h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
        if h == 0 or w == 0:  # a thin strip: pad rather than lose it
            a = _pad_to_multiple(a, factor)
            h, w = a.shape[:2]
        blocks = a[:h, :w].reshape(h // factor, factor, w // factor, factor, *a.shape[2:])
        a = blocks.mean(axis=(1, 3), dtype=np.float32)
    a = a.astype(np.float32) / scale
    if not np.isfinite(a).all():
        raise ValueError("image data contains NaN or infinity")
    return np.clip(a, 0.0, 1.0)


def _pad_to_multiple(a: np.ndarray, factor: int) -> np.ndarray:
    pad = [(0, (-s) % factor) for s in a.shape[:2]] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, pad, mode="edge")


def _full_scale(a: np.ndarray) -> float:
    """The value meaning 'full intensity': 255 for uint8; for other types (16-bit PNGs load as
    uint16 or int32, floats may be 0-1 or 0-255) the smallest of 1, 255, 65535 that holds the peak."""
    if a.dtype == np.uint8:
        return 255.0
    peak = float(a.max()) if a.size else 1.0
    return 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0


def _ink(a: np.ndarray, ink: str) -> np.ndarray:
    """Ink intensity [H, W] in [0, 1]: alpha when it varies, else luminance against the background."""
    if a.ndim == 3 and a.shape[2] in (2, 4):
        alpha = a[:, :, -1]
        if alpha.max() - alpha.min() > MIN_INK:
            return alpha
        a = a[:, :, :-1]
    if a.ndim == 3 and a.shape[2] == 3:  # ITU-R 601 luma, as PIL's "L" conversion
        a = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    elif a.ndim == 3:
        a = a[:, :, 0]
    if ink == "light":
        return a
    if ink == "dark":
        return 1.0 - a
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on light paper
        return np.clip((background - a) / background, 0.0, 1.0)
    return np.clip((a - background) / (1.0 - background), 0.0, 1.0)


def stroke_width(ink: np.ndarray) -> float:
    """The mean stroke width of an ink map [H, W], in its own pixels, from the distance transform:
    across a stroke w pixels wide the distances to the background are 1, 2, ..., 2, 1, whose mean
    is (w + 2) / 4. Measured on a copy enlarged to PEN_RESOLUTION, so 28x28 digits measure as
    finely as a big drawing."""
    factor = max(1, -(-PEN_RESOLUTION // max(ink.shape)))
    distances = ndimage.distance_transform_edt(np.pad(_enlarge(ink, factor) >= 0.5, 1))
    inside = distances[distances > 0]
    return (4.0 * float(inside.mean()) - 2.0) / factor if inside.size else 0.0


def normalise_pen(ink: np.ndarray, target: tuple[float, float] = MNIST_STROKE) -> np.ndarray:
    """A cropped ink map whose strokes, once ``_fit_box`` scales it, are about ``target`` pixels
    wide: thickened by dilating it; thinned by eroding it, with its medial ridge (the distance
    transform's crests) redrawn at the narrower width so that strokes thinner than the erosion
    survive. A digit already within range, or a filled shape rather than strokes, is returned
    unchanged. Loops that a broad pen filled in stay filled: no pen change can reopen them."""
    factor = max(1, -(-PEN_RESOLUTION // max(ink.shape)))
    big = _enlarge(ink, factor)
    longer = max(big.shape)
    width = stroke_width(big)
    scaled = width * BOX / longer
    goal = float(np.clip(scaled, *target))
    if width == 0.0 or goal == scaled or scaled > BLOB * BOX:
        return ink
    # Changing every stroke's half-width by r also grows the box by 2r, so solve for the final width:
    # (width + 2r) * BOX / (longer + 2r) = goal.
    r = (goal * longer / BOX - width) / (2.0 * (1.0 - goal / BOX))
    margin = int(np.ceil(max(r, 0.0))) + 1
    mask = np.pad(big >= 0.5, margin)
    if r > 0:
        redrawn = ndimage.distance_transform_edt(~mask) <= r
    else:
        inside = ndimage.distance_transform_edt(mask)
        ridge = (inside > 0) & (inside >= ndimage.maximum_filter(inside, size=3))
        redrawn = (inside > -r) | (ndimage.distance_transform_edt(~ridge) <= max(width / 2.0 + r, 0.5))
    return _crop(redrawn.astype(np.float32))


def _enlarge(ink: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return ink
    h, w = ink.shape
    resized = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32)).resize((w * factor, h * factor),
                                                                                   Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _crop(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit_box(ink: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX pixels, keeping the aspect ratio, anti-aliased."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized), 0.0, 1.0)  # Lanczos overshoots a little at hard edges


def _centre(digit: np.ndarray) -> np.ndarray:
    """Place in the 28x28 field with the centre of mass at CENTRE (whole-pixel shift, as MNIST),
    kept inside the field."""
    h, w = digit.shape
    mass = digit.sum()
    com_r = (digit.sum(axis=1) @ np.arange(h)) / mass
    com_c = (digit.sum(axis=0) @ np.arange(w)) / mass
    top = int(np.clip(round(CENTRE - com_r), 0, SIZE - h))
    left = int(np.clip(round(CENTRE - com_c), 0, SIZE - w))
    field = np.zeros((SIZE, SIZE), dtype=np.float32)
    field[top : top + h, left : left + w] = digit
    return field
