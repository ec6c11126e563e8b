"""vae.datasets: folders and zips of images read into datasets, bad uploads refused with a message,
conversions of every kind of image, and datasets kept once under the data folder."""

from __future__ import annotations

import io
import os
import threading
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from vae.datasets import (
    COLOR,
    GRAY,
    DatasetError,
    Limits,
    add_dataset,
    added_datasets,
    digits,
    load_dataset,
    main,
    read_images,
    resolve,
)
from vae.settings import configure


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def glyph(i: int, ink: int = 255, paper: int = 0, size: int = 16) -> Image.Image:
    """A bar at a place set by ``i``, so each image differs: ink on paper, opaque."""
    pixels = np.full((size, size), paper, dtype=np.uint8)
    pixels[2:-2, 2 + i % (size - 6) : 5 + i % (size - 6)] = ink
    return Image.fromarray(pixels)


def write(root, files: dict[str, bytes]):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def make_zip(path, files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def pets(n: int = 5) -> dict[str, bytes]:
    return {f"{label}/{i}.png": encode(glyph(i + 7 * k)) for k, label in enumerate(("dog", "cat")) for i in range(n)}


def converted(tmp_path, data: bytes, suffix: str = ".png", form=GRAY):
    """One image, converted: the first of a flat folder holding it twice (a dataset needs two)."""
    folder = write(tmp_path / "one", {f"a{suffix}": data, f"b{suffix}": data})
    dataset, report = read_images(folder, form)
    assert report.images == 2 and not report.skipped
    return dataset.train_images[0].numpy(), dataset.info, report


def same(a, b) -> bool:
    return a.info == b.info and all(torch.equal(getattr(a, k), getattr(b, k)) for k in
                                    ("train_images", "train_labels", "test_images", "test_labels"))


# ---------------------------------------------------------------- layouts and forms


def test_a_labelled_folder_and_its_zip_give_the_same_dataset(tmp_path):
    files = pets()
    folder = write(tmp_path / "pets", files)
    zipped = make_zip(tmp_path / "pets.zip", {f"pets/{name}": data for name, data in files.items()})
    from_folder, report = read_images(folder)
    from_zip, _ = read_images(zipped)
    assert same(from_folder, from_zip)
    info = from_folder.info
    assert info.label_names == ("cat", "dog") and report.label_counts == {"cat": 5, "dog": 5}
    assert info.key == f"pets-{info.sha256[:12]}" and info.background == "black"
    assert (info.train_count, info.test_count) == (8, 2)
    assert from_folder.test_labels.tolist() == [0, 1]  # one of each label held out
    assert from_folder.train_images.shape == (8, 28, 28) and from_folder.train_images.dtype == torch.uint8
    assert from_folder.train_labels.dtype == torch.int64
    assert report.sizes == {"16×16": 10} and report.modes == {"L": 10}


def test_a_flat_folder_is_unlabelled(tmp_path):
    folder = write(tmp_path / "flat", {f"{i}.png": encode(glyph(i)) for i in range(20)})
    dataset, report = read_images(folder)
    assert dataset.info.label_names == () and report.label_counts == {} and report.images == 20
    assert (dataset.info.train_count, dataset.info.test_count) == (18, 2)
    assert dataset.train_labels.eq(0).all() and dataset.test_labels.eq(0).all()
    assert any("unlabelled" in line for line in report.lines())


def test_images_outside_the_label_folders_are_skipped(tmp_path):
    folder = write(tmp_path / "pets", {**pets(2), "stray.png": encode(glyph(0))})
    dataset, report = read_images(folder)
    assert report.label_counts == {"cat": 2, "dog": 2}
    assert [(s.name, s.kind) for s in report.skipped] == [("stray.png", "outside the label folders")]


def test_hidden_files_and_mac_metadata_are_skipped_and_reported(tmp_path):
    files = {f"pets/{name}": data for name, data in pets(2).items()}
    zipped = make_zip(tmp_path / "pets.zip", {**files, "__MACOSX/pets/cat/._0.png": b"x", "pets/.DS_Store": b"x",
                                              "pets/readme.txt": b"hi"})
    _, report = read_images(zipped)
    assert report.images == 4
    assert sorted(s.kind for s in report.skipped) == ["hidden", "macOS metadata (__MACOSX)", "not an image"]
    text = "\n".join(report.lines())
    assert "skipped 3 files" in text and "readme.txt" in text


def test_colour_form(tmp_path):
    red = Image.new("RGB", (10, 10), (255, 0, 0))
    pixels, info, _ = converted(tmp_path, encode(red), form=COLOR)
    assert pixels.shape == (3, 32, 32) and (info.channels, info.size) == (3, 32)
    assert pixels[:, 16, 16].tolist() == [255, 0, 0]


def test_images_are_resized_to_fit_and_centred_on_the_background(tmp_path):
    wide = np.zeros((10, 20), dtype=np.uint8)
    wide[1:-1, 1:-1] = 255
    pixels, info, _ = converted(tmp_path, encode(Image.fromarray(wide)))
    assert info.background == "black"
    assert pixels[:7].max() == 0 and pixels[21:].max() == 0  # 28 x 14, centred: margins above and below
    assert pixels[14, 14] == 255


def test_dark_ink_on_white_paper_keeps_a_white_background(tmp_path):
    wide = np.full((10, 20), 255, dtype=np.uint8)
    wide[3:7, 3:17] = 0
    pixels, info, report = converted(tmp_path, encode(Image.fromarray(wide)))
    assert info.background == "white" and pixels[0, 0] == 255 and pixels[14, 14] == 0  # not inverted
    assert any("background: white" in line and "ink is dark" in line for line in report.lines())


# ---------------------------------------------------------------- image kinds


def test_16_bit_greys_are_scaled_not_clipped(tmp_path):
    pixels = np.zeros((28, 28), dtype=np.uint16)
    pixels[:, :14], pixels[:, 14:] = 65535, 1000
    image = Image.fromarray(pixels)
    assert image.mode == "I;16"
    out, _, report = converted(tmp_path, encode(image))
    assert out[0, 0] == 255 and out[0, 27] == round(1000 / 65535 * 255)
    assert report.modes == {"I;16": 2}


def test_cmyk_becomes_rgb(tmp_path):
    pixels = np.zeros((28, 28, 4), dtype=np.uint8)
    pixels[:, 14:, 3] = 255  # right half: full black ink; left half: no ink, white paper
    out, _, report = converted(tmp_path, encode(Image.fromarray(pixels, "CMYK"), "TIFF"), ".tiff")
    assert out[0, 0] == 255 and out[0, 27] == 0 and report.modes == {"CMYK": 2}


def test_palette_images_are_looked_up(tmp_path):
    image = Image.new("P", (28, 28), 0)
    image.putpalette([0, 0, 0, 200, 200, 200] + [0] * 762)
    image.paste(1, (0, 0, 14, 28))
    out, _, report = converted(tmp_path, encode(image, "GIF"), ".gif")
    assert out[0, 0] == 200 and out[0, 27] == 0 and report.modes == {"P": 2}


@pytest.mark.parametrize(("ink", "background"), [(255, "black"), (0, "white")])
def test_a_glyph_on_transparency_gets_the_background_its_ink_shows_on(tmp_path, ink, background):
    image = Image.new("RGBA", (28, 28), (0, 0, 0, 0))
    image.paste((ink, ink, ink, 255), (8, 8, 20, 20))
    out, info, _ = converted(tmp_path, encode(image))
    assert info.background == background
    assert out[14, 14] == ink and out[0, 0] == (0 if background == "black" else 255)


def test_a_transparent_palette_colour_becomes_background(tmp_path):
    image = Image.new("P", (28, 28), 0)
    image.putpalette([255, 0, 0, 255, 255, 255] + [0] * 762)
    image.paste(1, (8, 8, 20, 20))
    out, info, _ = converted(tmp_path, encode(image, transparency=0))  # red, index 0, is transparent
    assert info.background == "black" and out[0, 0] == 0 and out[14, 14] == 255


def test_an_animation_gives_its_first_frame(tmp_path):
    first = Image.new("L", (28, 28), 0)
    first.paste(255, (8, 8, 20, 20))
    gif = encode(first, "GIF", save_all=True, append_images=[Image.new("L", (28, 28), 128)], duration=100)
    assert Image.open(io.BytesIO(gif)).n_frames == 2
    out, _, _ = converted(tmp_path, gif, ".gif")
    assert out[0, 0] == 0 and out[14, 14] == 255


def test_jpeg_webp_bmp_and_tiff_are_read(tmp_path):
    image = glyph(3).convert("RGB")
    folder = write(tmp_path / "kinds", {"a.jpg": encode(image, "JPEG"), "b.webp": encode(image, "WEBP"),
                                        "c.bmp": encode(image, "BMP"), "d.tif": encode(image, "TIFF")})
    dataset, report = read_images(folder)
    assert report.images == 4 and not report.skipped


def test_corrupt_truncated_and_oversized_images_are_skipped_and_counted(tmp_path):
    good = {f"{i}.png": encode(glyph(i)) for i in range(3)}
    folder = write(tmp_path / "some", {**good, "cut.png": good["0.png"][:60], "junk.png": b"not a png",
                                       "big.png": encode(Image.new("L", (40, 40)))})
    _, report = read_images(folder, limits=Limits(max_image_pixels=1000))
    assert report.images == 3
    reasons = {s.name: s.reason for s in report.skipped}
    assert reasons.keys() == {"cut.png", "junk.png", "big.png"}
    assert reasons["cut.png"].startswith("truncated or corrupt") and reasons["junk.png"].startswith("truncated")
    assert "40×40" in reasons["big.png"] and "max_image_pixels" in reasons["big.png"]


def test_links_in_a_folder_are_not_followed(tmp_path):
    outside = write(tmp_path / "outside", {"secret.png": encode(glyph(0))})
    folder = write(tmp_path / "flat", {f"{i}.png": encode(glyph(i)) for i in range(2)})
    os.symlink(outside / "secret.png", folder / "link.png")
    os.symlink(outside, folder / "linked")
    _, report = read_images(folder)
    assert report.images == 2 and {s.name for s in report.skipped} == {"link.png", "linked/"}


# ---------------------------------------------------------------- bad uploads


def refused(source, match: str, limits: Limits | None = None) -> DatasetError:
    with pytest.raises(DatasetError, match=match) as caught:
        read_images(source, limits=limits or Limits())
    return caught.value


def test_not_a_zip(tmp_path):
    (tmp_path / "notes.zip").write_text("hello")
    (tmp_path / "a.png").write_bytes(encode(glyph(0)))
    assert refused(tmp_path / "notes.zip", "not a zip file").limit is None
    refused(tmp_path / "a.png", "not a zip file")
    refused(tmp_path / "missing", "does not exist")


def test_a_damaged_zip(tmp_path):
    whole = make_zip(tmp_path / "pets.zip", pets()).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    refused(tmp_path / "cut.zip", "the zip is damaged")
    marker = np.full(4096, 77, dtype=np.uint8).tobytes()  # stored, not compressed: found again in the zip
    stored = make_zip(tmp_path / "flipped.zip", {"a.bmp": marker, "b.png": encode(glyph(0))}, zipfile.ZIP_STORED)
    data = bytearray(stored.read_bytes())
    data[data.index(marker) + 100] ^= 0xFF
    stored.write_bytes(bytes(data))
    refused(stored, "damaged: a.bmp")


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", {**pets(), "cat/huge.png": bytes(4 * 2**20)})
    assert refused(bomb, "zip bomb").limit == "max_compression_ratio"
    many = make_zip(tmp_path / "many.zip", {f"{i}.png": bytes(16 * 2**10) for i in range(100)})  # 1.6 MB of zeros
    assert refused(many, "zip bomb").limit == "max_compression_ratio"
    with pytest.raises(DatasetError, match="zip bomb"):
        add_dataset(bomb, data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()  # nothing written


def test_a_zip_too_big_uncompressed_is_refused(tmp_path):
    zipped = make_zip(tmp_path / "pets.zip", pets())
    error = refused(zipped, "max_uncompressed_bytes", Limits(max_uncompressed_bytes=500))
    assert error.limit == "max_uncompressed_bytes"


@pytest.mark.parametrize("name", ["../evil.png", "pets/../../evil.png", "/etc/evil.png", "C:/evil.png",
                                  "..\\evil.png", "../readme.txt"])
def test_unsafe_names_are_refused_before_anything_is_read(tmp_path, name):
    zipped = make_zip(tmp_path / "evil.zip", {**pets(), name: encode(glyph(0))})
    assert refused(zipped, "unsafe name.*nothing was read").limit is None


def test_a_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("cat/link.png")
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        for name, data in pets().items():
            zf.writestr(name, data)
        zf.writestr(link, "/etc/passwd")
    refused(tmp_path / "link.zip", "symbolic link")


def test_too_few_images(tmp_path):
    refused(write(tmp_path / "none", {"readme.txt": b"hi"}), "no images could be read.*1 not an image")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "no images could be read from empty$")
    refused(write(tmp_path / "one", {"a.png": encode(glyph(0))}), "only one image")
    lonely = write(tmp_path / "pets", {**pets(), "owl/0.png": encode(glyph(0))})
    refused(lonely, "each label needs at least 2 images.*: owl$")


def test_too_many_images(tmp_path):
    error = refused(write(tmp_path / "pets", pets(2)), "4 images is more than the limit of 3", Limits(max_images=3))
    assert error.limit == "max_images"


# ---------------------------------------------------------------- keeping datasets


def test_add_keeps_a_dataset_once_under_the_data_folder(tmp_path):
    files = pets()
    folder = write(tmp_path / "pets", files)
    zipped = make_zip(tmp_path / "pets.zip", {f"pets/{name}": data for name, data in files.items()})
    data_dir = tmp_path / "data"
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    dataset, report = add_dataset(folder, data_dir=data_dir)
    kept = data_dir / "datasets" / f"{dataset.info.key}.npz"
    assert {p for p in tmp_path.rglob("*")} - before.keys() == {data_dir, kept.parent, kept}
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # the source is untouched
    written = kept.stat()
    again, _ = add_dataset(zipped, data_dir=data_dir)  # the same content: the kept file is reused
    assert again.info == dataset.info and kept.stat().st_mtime_ns == written.st_mtime_ns
    assert added_datasets(data_dir) == [dataset.info]
    assert same(load_dataset(dataset.info.key, data_dir), dataset)
    assert resolve(dataset.info.key, data_dir=data_dir).info == dataset.info
    renamed, _ = add_dataset(zipped, data_dir=data_dir, name="My Pets!")  # an upload saved under another name
    assert renamed.info.name == "My Pets!" and renamed.info.key == f"my-pets-{dataset.info.sha256[:12]}"


def test_a_damaged_kept_file_is_refused_and_replaced(tmp_path):
    folder = write(tmp_path / "pets", pets())
    data_dir = tmp_path / "data"
    dataset, _ = add_dataset(folder, data_dir=data_dir)
    kept = data_dir / "datasets" / f"{dataset.info.key}.npz"
    kept.write_bytes(kept.read_bytes()[:100])
    (data_dir / "datasets" / "junk.npz").write_bytes(b"junk")
    assert added_datasets(data_dir) == []
    with pytest.raises(DatasetError, match="cannot be read"):
        load_dataset(dataset.info.key, data_dir)
    add_dataset(folder, data_dir=data_dir)
    assert same(load_dataset(dataset.info.key, data_dir), dataset)


def test_unknown_keys(tmp_path):
    with pytest.raises(DatasetError, match="no dataset 'nope'.*none yet"):
        load_dataset("nope", tmp_path)
    with pytest.raises(DatasetError, match="no dataset '../x'"):
        load_dataset("../x", tmp_path)
    with pytest.raises(DatasetError, match="no dataset 'nope'.*no folder or zip"):
        resolve("nope", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="drop --color"):
        resolve("mnist", COLOR, data_dir=tmp_path)  # refused before MNIST is loaded


def test_resolve_adds_a_folder_in_the_form_asked(tmp_path):
    folder = write(tmp_path / "pets", pets())
    dataset = resolve(str(folder), COLOR, data_dir=tmp_path / "data")
    assert dataset.train_images.shape == (8, 3, 32, 32)
    assert [info.key for info in added_datasets(tmp_path / "data")] == [dataset.info.key]
    with pytest.raises(DatasetError, match="add --color"):
        resolve(dataset.info.key, GRAY, data_dir=tmp_path / "data")


def test_a_second_upload_while_one_is_read_is_refused(tmp_path):
    folder = write(tmp_path / "pets", pets())
    data_dir = tmp_path / "data"
    reading, finish = threading.Event(), threading.Event()

    def hold(done, total):
        reading.set()
        finish.wait(10)

    first = threading.Thread(target=add_dataset, args=(folder,), kwargs={"data_dir": data_dir, "progress": hold})
    first.start()
    try:
        assert reading.wait(10)
        with pytest.raises(DatasetError, match="another dataset is being read"):
            add_dataset(folder, data_dir=data_dir)
    finally:
        finish.set()
        first.join()
    add_dataset(folder, data_dir=data_dir)  # free again


# ---------------------------------------------------------------- digits and the command line


def test_digits():
    dataset = digits()
    info = dataset.info
    assert (info.key, info.name, info.label_names) == ("digits", "scikit-learn digits", tuple("0123456789"))
    assert info.train_count + info.test_count == 1797 and info.test_count == len(dataset.test_labels)
    assert dataset.train_images.shape == (info.train_count, 28, 28) and dataset.train_images.max() == 255
    assert torch.bincount(dataset.test_labels, minlength=10).min() >= 17  # 10% of each label's ~180
    assert load_dataset("digits").info == info
    with pytest.raises(DatasetError, match="digits is grayscale 28×28, not colour 32×32: drop --color"):
        resolve("digits", COLOR)


def test_the_command_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err
    (tmp_path / "bad.zip").write_text("no")
    assert main([str(tmp_path / "bad.zip")]) == 2
    assert "not a zip file" in capsys.readouterr().err
    folder = write(tmp_path / "pets", pets())
    configure(data_dir=tmp_path / "data")
    assert main([str(folder), "--add"]) == 0
    out = capsys.readouterr().out
    key = added_datasets(tmp_path / "data")[0].key
    assert "pets: 10 images, 2 labels" in out and "cat: 5, dog: 5" in out and f"--data {key}" in out
