"""The image-file vocabulary: sniffing, mime types, the one encoder, file names and URLs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.errors import ImageError
from engine.gen import images


def encoded(fmt: str, size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buf, format=fmt)
    return buf.getvalue()


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.copy()


def noise(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)


# ---- what bytes are --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("GIF", "gif")])
def test_sniff_names_the_type_from_the_first_bytes(fmt: str, ext: str) -> None:
    """PNG, JPEG, WebP and GIF bytes are recognised by their magic numbers."""
    assert images.sniff(encoded(fmt)) == ext


def test_sniff_of_anything_else_is_none() -> None:
    """Bytes that are no known image, or too short to tell, give None."""
    assert images.sniff(b"not an image at all") is None and images.sniff(b"") is None


def test_ext_for_mime_ignores_case_and_parameters() -> None:
    """A mime type with odd case and parameters still finds its extension; an unknown one finds none."""
    assert images.ext_for_mime("Image/JPEG; q=0.9") == "jpg"
    assert images.ext_for_mime("application/pdf") is None and images.ext_for_mime(None) is None


@pytest.mark.parametrize(("ext", "mime"), [("png", "image/png"), ("jpg", "image/jpeg"), ("jpeg", "image/jpeg"),
                                           ("webp", "image/webp"), ("gif", "image/gif"), ("bin", "image/png")])
def test_content_type_of_an_extension(ext: str, mime: str) -> None:
    """Each served extension has its mime type; an unknown one is served as PNG."""
    assert images.content_type(ext) == mime


def test_every_extension_a_mime_maps_to_has_a_content_type() -> None:
    """The two tables agree: a file named from its mime type is served with that same mime type."""
    for mime, ext in images.MIME_EXT.items():
        assert images.ext_for_mime(images.content_type(ext)) == ext, mime


def test_size_of_reads_the_header() -> None:
    """Width and height come from the encoded header."""
    assert images.size_of(encoded("JPEG", (13, 7))) == (13, 7)


def test_size_of_garbage_is_unknown() -> None:
    """Bytes that do not decode have no size, and no error."""
    assert images.size_of(b"\x89PNG\r\n\x1a\n" + bytes(20)) == (None, None)


# ---- pixels → bytes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "mode"), [((5, 7), "L"), ((5, 7, 3), "RGB"), ((5, 7, 4), "RGBA")])
def test_png_round_trips_every_accepted_shape(shape: tuple[int, ...], mode: str) -> None:
    """Gray, RGB and RGBA pixels come back from the PNG exactly, in their mode."""
    pixels = noise(shape)
    im = decoded(images.encode(pixels, "png"))
    assert im.mode == mode and np.array_equal(np.asarray(im), pixels)


def test_jpeg_drops_alpha() -> None:
    """RGBA pixels become an RGB JPEG of the same size."""
    data = images.encode(noise((6, 9, 4)), "jpeg")
    im = decoded(data)
    assert (images.sniff(data), im.mode, im.size) == ("jpg", "RGB", (9, 6))


def test_jpeg_quality_changes_the_bytes() -> None:
    """A lower quality gives a smaller file of the same picture."""
    pixels = noise((32, 32, 3))
    assert len(images.encode(pixels, "jpeg", quality=20)) < len(images.encode(pixels, "jpeg", quality=95))


def test_png_compress_level_is_honoured() -> None:
    """A higher compression level gives a file no bigger than the fast default."""
    pixels = np.zeros((64, 64, 3), np.uint8)
    assert len(images.encode(pixels, "png", compress_level=9)) <= len(images.encode(pixels, "png"))


@pytest.mark.parametrize("pixels", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8),
                                    np.zeros((2, 4, 4, 3), np.uint8)])
def test_encode_refuses_arrays_that_are_no_picture(pixels: np.ndarray) -> None:
    """A wrong dtype or shape is an ImageError that names both."""
    with pytest.raises(ImageError, match=r"^pixels: expected uint8 \(h, w\), \(h, w, 3\) or \(h, w, 4\), got"):
        images.encode(pixels, "png")


def test_encode_refuses_an_empty_picture() -> None:
    """Zero rows or columns is an ImageError, not an empty file."""
    with pytest.raises(ImageError, match=r"^pixels: empty image \(0, 4, 3\)"):
        images.encode(np.zeros((0, 4, 3), np.uint8), "jpeg")


def test_encode_refuses_an_unknown_format() -> None:
    """Only png and jpeg are written."""
    with pytest.raises(ImageError, match="'gif' is not png or jpeg"):
        images.encode(np.zeros((2, 2, 3), np.uint8), "gif")  # type: ignore[arg-type]


# ---- names and URLs --------------------------------------------------------------------------------------


def test_safe_stem_keeps_a_plain_id() -> None:
    """An id that is already file-name safe is its own stem."""
    assert images.safe_stem("p-42_x") == "p-42_x"


def test_safe_stem_of_unsafe_ids_is_safe_and_distinct() -> None:
    """Path characters are replaced, and a hash keeps two ids that reduce alike apart."""
    a, b = images.safe_stem("../../etc/passwd"), images.safe_stem("__.._etc_passwd")
    assert a != b and images.IMAGE_FILE.match(images.file_name(images.make_image_id(a, 1), "png"))


def test_safe_stem_of_a_long_id_fits_a_url() -> None:
    """The longest stem with a four-digit image number is still an id the server accepts."""
    image_id = images.make_image_id(images.safe_stem("é" * 500), 9999)
    assert images.parse_image_path(images.image_url(image_id, "png")) == (image_id, "png")


def test_file_name_and_url_of_an_image() -> None:
    """An image id names its file and its URL the same way."""
    assert images.file_name("p1-2", "jpg") == "p1-2.jpg"
    assert images.image_url("p1-2", "jpg") == "/images/p1-2.jpg"


def test_ext_of_a_file_name() -> None:
    """The extension of a stored file name, or the default when there is no file."""
    assert images.ext_of("p1-2.webp") == "webp" and images.ext_of(None) == "png"


@pytest.mark.parametrize("ext", images.SERVED_EXTS)
def test_parse_image_path_reads_back_every_served_extension(ext: str) -> None:
    """Every URL image_url makes for a served extension parses back to its id and extension."""
    assert images.parse_image_path(images.image_url("p1-1", ext)) == ("p1-1", ext)


@pytest.mark.parametrize("path", ["/images/p1-1.gif", "/images/../etc/passwd.png", "/images/.png",
                                  "/img/p1-1.png", "/images/p1-1.png\n", "/images/a b.png"])
def test_parse_image_path_refuses_anything_else(path: str) -> None:
    """Other extensions, path tricks, other folders and trailing newlines are not image paths."""
    assert images.parse_image_path(path) is None


def test_parse_image_path_under_another_prefix() -> None:
    """The VJ page's images live under their own prefix and parse the same way."""
    assert images.parse_image_path("/vj/images/p1-1.webp", prefix="/vj/images/") == ("p1-1", "webp")


def test_image_path_regex_matches_the_server_today() -> None:
    """IMAGE_PATH is the pattern the show server has always served images by."""
    assert images.IMAGE_PATH.pattern == r"^/images/([A-Za-z0-9_-]{1,80})\.(png|jpg|jpeg|webp)$"
