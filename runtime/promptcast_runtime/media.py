"""`Image`: an image input, sent as an OpenAI `image_url` content part.

An image comes from a file path, an http(s) URL, raw bytes, base64 text or a data URL. Nothing
is read when one is made from a path: the file is read (once) when a call first renders it, so
importing a generated module never touches the disk. A remote URL is sent as it is (the endpoint
fetches it); everything else is sent as a `data:<mime>;base64,...` URL.

The JSON form (what demos hold, `to_jsonable(image)`) is `{"image": {...}}` with either `url`
(a remote URL, or the inline data URL of an image known by its bytes, plus `sha256` and `mime`)
or `path` + `sha256` + `mime`: a file checked against its content hash when it is read. The
lock holds only the second kind: the compiler writes the bytes once beside the lock
(`promptcast.media/<sha256>.<ext>`), and `build` copies them beside the generated module, whose
step is built with `media=__file__` so that relative paths resolve there. A missing file, or one
whose bytes no longer hash to `sha256`, is an `ImageError`, never a silently different prompt.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from .errors import PromptcastRuntimeError

MEDIA_DIR = "promptcast.media"
"""The folder beside a lock (and beside a generated module) holding demo images by hash."""

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
}
_BY_EXTENSION = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}


class ImageError(PromptcastRuntimeError, ValueError):
    """An image that cannot be sent: unreadable, of unknown type, or not the file it claims."""


def sniff_mime(data: bytes) -> str | None:
    """The image type of `data` from its first bytes, or None."""
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def extension(mime: str) -> str:
    """The file extension the media folder uses for `mime` (`bin` when unknown)."""
    return _EXTENSIONS.get(mime, "bin")


class Image:
    """One image input. Make it with `Image(source)` (a data URL, an http(s) URL, a path, bytes,
    or a JSON form) or the explicit `from_path`, `from_url`, `from_bytes`, `from_base64`,
    `from_data_url`. Immutable; its bytes are read and encoded at most once."""

    __slots__ = ("_data", "_lock", "_mime", "_path", "_ref", "_sha256", "_source", "_url")
    __promptcast_describe__ = "image"

    _data: bytes | None
    _url: str | None
    _path: str | None
    _sha256: str | None
    _mime: str | None

    def __init__(self, source: Any) -> None:
        self._clear()
        if isinstance(source, Image):
            for slot in ("_data", "_url", "_path", "_ref", "_sha256", "_mime", "_source"):
                setattr(self, slot, getattr(source, slot))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self._set_bytes(bytes(source), None)
        elif isinstance(source, Mapping):
            self._set_json(source, None)
        elif isinstance(source, (str, os.PathLike)):
            text = os.fspath(source)
            if text.startswith("data:"):
                self._set_data_url(text)
            elif text.startswith(("http://", "https://")):
                self._url = text
                self._source = text
            elif not text:
                raise ImageError("an empty text is no image (a path, an http(s) or data URL)")
            else:
                self._path = text
                self._source = os.path.basename(text)
                self._mime = _BY_EXTENSION.get(os.path.splitext(text)[1].lower())
        else:
            raise TypeError(
                "an Image is made from a path, an http(s) or data URL, bytes or base64 "
                f"(Image.from_base64), not {type(source).__name__}"
            )

    def _clear(self) -> None:
        self._data = None
        self._url = None
        self._path = None
        self._ref = False
        self._sha256 = None
        self._mime = None
        self._source = ""
        self._lock = threading.Lock()

    @classmethod
    def _empty(cls) -> Image:
        image = cls.__new__(cls)
        image._clear()
        return image

    # Constructors ---------------------------------------------------------------------------

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], mime: str | None = None) -> Image:
        """A local file, read when a call first renders it (not now)."""
        image = cls(os.fspath(path))
        if image._path is None:
            raise ImageError(f"{os.fspath(path)!r} is not a file path")
        if mime is not None:
            image._mime = mime
        return image

    @classmethod
    def from_url(cls, url: str) -> Image:
        """An http(s) URL, sent as is: the endpoint fetches it (nothing is downloaded here)."""
        if not url.startswith(("http://", "https://")):
            raise ImageError(f"Image.from_url takes an http(s) URL, not {url[:80]!r}")
        return cls(url)

    @classmethod
    def from_bytes(cls, data: bytes, mime: str | None = None) -> Image:
        """Raw image bytes; the type is read from the bytes unless `mime` is given."""
        image = cls._empty()
        image._set_bytes(bytes(data), mime)
        return image

    @classmethod
    def from_base64(cls, text: str, mime: str | None = None) -> Image:
        """Base64 text of the image bytes (a data URL is accepted too)."""
        if text.startswith("data:"):
            return cls.from_data_url(text)
        return cls.from_bytes(_b64decode(text, "base64 image"), mime)

    @classmethod
    def from_data_url(cls, url: str) -> Image:
        """A `data:<mime>;base64,<data>` URL."""
        if not url.startswith("data:"):
            raise ImageError(f"not a data URL: {url[:40]!r}")
        return cls(url)

    @classmethod
    def from_data(cls, value: Any) -> Image:
        """An Image from a data file's value (a path or URL text, or a JSON form)."""
        return value if isinstance(value, Image) else cls(value)

    @classmethod
    def reference(cls, path: str, sha256: str, mime: str, source: str = "") -> Image:
        """A file known by its content hash (a lock's demo image): checked when first read."""
        image = cls._empty()
        image._path = path
        image._ref = True
        image._sha256 = sha256
        image._mime = mime
        image._source = source or path
        return image

    def _set_bytes(self, data: bytes, mime: str | None) -> None:
        if not data:
            raise ImageError("an image of no bytes")
        self._data = data
        self._mime = mime or sniff_mime(data)
        if self._mime is None:
            raise ImageError(
                "unknown image type (not PNG, JPEG, GIF, WebP or BMP); pass mime= to say which"
            )

    def _set_data_url(self, url: str) -> None:
        head, comma, payload = url.partition(",")
        if not comma or not head.endswith(";base64"):
            raise ImageError(f"a data URL must be data:<mime>;base64,<data>, not {url[:40]!r}")
        mime = head[len("data:") : -len(";base64")] or None
        self._set_bytes(_b64decode(payload, "data URL"), mime)

    def _set_json(self, form: Mapping[str, Any], root: str | None) -> None:
        inner = form.get("image") if set(form) == {"image"} else None
        if not isinstance(inner, Mapping):
            raise ImageError(f"an image's JSON form is {{'image': {{...}}}}, not {dict(form)!r:.80}")
        if "path" in inner:
            path = str(inner["path"])
            if root is not None and not os.path.isabs(path):
                path = os.path.join(root, path)
            self._path = path
            self._ref = True
            self._source = str(inner["path"])
            self._sha256 = _text(inner, "sha256")
            self._mime = _text(inner, "mime")
        elif "url" in inner:
            url = str(inner["url"])
            if url.startswith("data:"):
                self._set_data_url(url)
                if "sha256" in inner and inner["sha256"] != self.sha256:
                    raise ImageError("an inline image's bytes do not match its sha256")
            else:
                self._url = url
                self._source = url
        else:
            raise ImageError("an image's JSON form holds a `path` (with sha256) or a `url`")

    @classmethod
    def from_json(cls, form: Mapping[str, Any], root: str | None = None) -> Image:
        """The image of a JSON form; a relative `path` is resolved against `root`."""
        image = cls._empty()
        image._set_json(form, root)
        return image

    # What a call sends ---------------------------------------------------------------------

    @property
    def is_remote(self) -> bool:
        """A URL the endpoint fetches itself: no bytes here, no hash."""
        return self._url is not None and self._data is None

    def data(self) -> bytes:
        """The image's bytes (a file is read once and checked against its hash)."""
        if self._data is not None:
            return self._data
        if self._path is None:
            raise ImageError(f"{self._url} is a remote image; its bytes are not here")
        with self._lock:
            if self._data is None:
                self._data = self._read()
        return self._data

    def _read(self) -> bytes:
        assert self._path is not None
        try:
            with open(self._path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ImageError(f"image {self._path}: cannot be read ({exc.strerror or exc})") from None
        if self._sha256 is not None:
            import hashlib

            found = hashlib.sha256(data).hexdigest()
            if found != self._sha256:
                raise ImageError(
                    f"image {self._path} changed: its bytes hash to sha256:{found[:12]}..., the "
                    f"lock recorded sha256:{self._sha256[:12]}...; restore the file or run "
                    "`promptcast optimize` again"
                )
        mime = self._mime or sniff_mime(data)
        if mime is None:
            raise ImageError(f"image {self._path}: unknown image type; pass mime= to say which")
        self._mime = mime
        return data

    @property
    def mime(self) -> str:
        if self._mime is None and not self.is_remote:
            self.data()
        return self._mime or ""

    @property
    def sha256(self) -> str:
        """The hex sha256 of the bytes ("" for a remote URL)."""
        if self.is_remote:
            return ""
        if self._sha256 is None:
            import hashlib

            self._sha256 = hashlib.sha256(self.data()).hexdigest()
        return self._sha256

    def url(self) -> str:
        """What the `image_url` part sends: the remote URL, or a data URL of the bytes."""
        if self._url is None:
            import base64

            encoded = base64.b64encode(self.data()).decode("ascii")
            self._url = f"data:{self.mime};base64,{encoded}"
        return self._url

    def content_part(self) -> dict[str, Any]:
        """The OpenAI chat content part of this image."""
        return {"type": "image_url", "image_url": {"url": self.url()}}

    # Reading it ----------------------------------------------------------------------------

    def size(self) -> tuple[int, int] | None:
        """(width, height) read from the header of a PNG, GIF or JPEG; None otherwise."""
        if self.is_remote:
            return None
        return image_size(self.data())

    def describe(self) -> str:
        """`<image sha256:ab12cd34ef56… 640x480 image/png from photo.png>`: for terminals."""
        if self.is_remote:
            return f"<image {self._url}>"
        parts = [f"sha256:{self.sha256[:12]}…"]
        size = self.size()
        if size is not None:
            parts.append(f"{size[0]}x{size[1]}")
        parts.append(self.mime)
        if self._source:
            parts.append(f"from {self._source}")
        return f"<image {' '.join(parts)}>"

    def __repr__(self) -> str:
        if self._data is None and self._path is not None:
            return f"Image.from_path({self._path!r})"
        return f"Image({self.describe()})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        if self.is_remote or other.is_remote:
            return self._url == other._url
        return self.sha256 == other.sha256

    def __hash__(self) -> int:
        return hash(self._url if self.is_remote else self.sha256)

    def __promptcast_json__(self) -> dict[str, Any]:
        """The JSON form: a remote URL, or the inline data URL with its hash and type (the
        compiler moves inline bytes into the media folder when it writes a lock)."""
        if self.is_remote:
            return {"image": {"url": self._url}}
        if self._ref:  # a file known by its hash (a lock's): stays a reference
            return {"image": {"mime": self.mime, "path": self._source, "sha256": self._sha256}}
        return {"image": {"mime": self.mime, "sha256": self.sha256, "url": self.url()}}


def is_image_form(value: Any) -> bool:
    """`value` is the JSON form of an image (`{"image": {...}}`)."""
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and isinstance(value.get("image"), Mapping)
    )


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF or baseline/progressive JPEG header; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(
                    data[i + 5 : i + 7], "big"
                )
            i += 2 + length
    return None


def _text(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise ImageError(f"an image reference needs its {key!r}")
    return value


def _b64decode(text: str, what: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"the {what} is not valid base64") from None
