"""Demo images in the lock: stored once by content hash beside it, referenced by path.

A demo image is held in memory as the runtime's JSON form (`promptcast_runtime.media`): while
optimizing, an inline `{"image": {"mime", "sha256", "url": "data:..."}}`. A lock never holds
those megabytes. When one is saved, each inline image's bytes are written once to
`promptcast.media/<sha256>.<ext>` beside the lock, and the demo keeps a reference:

    {"image": {"mime": "image/png", "path": "promptcast.media/<sha256>.png", "sha256": "<sha256>"}}

`build` copies the files a module's demos reference into the generated tree beside that module
(the same relative path), and the module builds its step with `media=__file__`, so the shipped
step reads them at its first call and checks each against its hash. A remote image
(`{"image": {"url": "https://..."}}`) stays a URL. A reference that leaves the media folder, or
whose name is not its hash, is refused when the lock is read (a build copies these files).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from promptcast_runtime.media import MEDIA_DIR, Image, ImageError, extension, is_image_form

from . import ir
from .errors import PromptcastError
from .fsutil import atomic_write_bytes

_REFERENCE = re.compile(rf"{re.escape(MEDIA_DIR)}/([0-9a-f]{{64}})\.[a-z0-9]{{1,8}}")


class MediaError(PromptcastError):
    """A demo image the lock or the build cannot use (missing, changed, or malformed)."""


def map_images(value: Any, change: Callable[[dict[str, Any]], Any]) -> Any:
    """`value` (a JSON value: a demo, a field's value, a history) with every image form
    replaced by `change(form)`."""
    if is_image_form(value):
        return change(value)
    if isinstance(value, dict):
        return {k: map_images(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [map_images(v, change) for v in value]
    return value


def images_in(value: Any) -> Iterator[dict[str, Any]]:
    """Every image form inside a JSON value."""
    if is_image_form(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from images_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from images_in(item)


def state_demos(state: ir.FunctionState) -> Iterator[ir.Demo]:
    """Every demo a state holds: its own, its knn pool's, its ensemble members'."""
    yield from state.demos
    yield from state.demo_pool
    for member in state.members:
        yield from state_demos(member)


def references(state: ir.FunctionState) -> list[dict[str, Any]]:
    """The path references among a state's demo images (what a build must ship)."""
    return [
        form["image"]
        for demo in state_demos(state)
        for form in images_in(demo)
        if "path" in form["image"]
    ]


def externalize(state: ir.FunctionState, root: Path) -> ir.FunctionState:
    """`state` with every inline demo image written to `root/promptcast.media/` (once: the file
    name is its hash) and replaced by its reference; a state without inline images is returned
    as it is."""

    def store(form: dict[str, Any]) -> Any:
        inner = form["image"]
        url = inner.get("url")
        if not isinstance(url, str) or not url.startswith("data:"):
            return form  # a reference already, or a remote URL
        try:
            image = Image.from_json(form)
            data = image.data()
        except ImageError as exc:
            raise MediaError(f"a demo image cannot be stored: {exc}") from None
        rel = f"{MEDIA_DIR}/{image.sha256}.{extension(image.mime)}"
        target = root / rel
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, data)
        return {"image": {"mime": image.mime, "path": rel, "sha256": image.sha256}}

    if not any(
        "url" in f["image"] and str(f["image"]["url"]).startswith("data:")
        for demo in state_demos(state)
        for f in images_in(demo)
    ):
        return state
    from dataclasses import replace

    def demos(items: tuple[ir.Demo, ...]) -> tuple[ir.Demo, ...]:
        return tuple(map_images(dict(d), store) for d in items)

    return replace(
        state,
        demos=demos(state.demos),
        demo_pool=demos(state.demo_pool),
        members=tuple(externalize(m, root) for m in state.members),
    )


def reference_problem(form: Any) -> str | None:
    """None for a valid image form a lock may hold, else what is wrong with it."""
    inner = form["image"]
    if "path" in inner:
        path, sha, mime = inner.get("path"), inner.get("sha256"), inner.get("mime")
        if set(inner) != {"path", "sha256", "mime"}:
            return f"an image reference holds exactly path, sha256 and mime, not {sorted(inner)}"
        match = _REFERENCE.fullmatch(path) if isinstance(path, str) else None
        if match is None:
            return (
                f"image path {path!r} is not {MEDIA_DIR}/<sha256>.<ext> (a build copies these"
                " files, so a lock may not point elsewhere)"
            )
        if match.group(1) != sha:
            return f"image path {path!r} does not name its sha256 {sha!r}"
        if not isinstance(mime, str) or not re.fullmatch(r"image/[a-z0-9.+-]{1,40}", mime):
            return f"image mime {mime!r} is not an image type"
        return None
    url = inner.get("url")
    if set(inner) == {"url"} and isinstance(url, str) and url.startswith(("http://", "https://")):
        return None
    return (
        "an image in a lock is a reference ({'path', 'sha256', 'mime'}) or an http(s) URL;"
        " inline image data is never stored in a lock"
    )


def media_files(state: ir.FunctionState, lock_root: Path | None, module_dir: str) -> dict[str, bytes]:
    """The files a built module's demos reference: generated-tree path -> bytes, each read from
    beside the lock and checked against its hash (a changed file fails the build)."""
    import hashlib

    files: dict[str, bytes] = {}
    for ref in references(state):
        source = (lock_root or Path(".")) / ref["path"]
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise MediaError(
                f"demo image {source} is missing ({exc.strerror}); it is written beside the lock"
                " by `promptcast optimize`"
            ) from None
        found = hashlib.sha256(data).hexdigest()
        if found != ref["sha256"]:
            raise MediaError(
                f"demo image {source} changed: its bytes hash to sha256:{found[:12]}..., the lock"
                f" recorded sha256:{ref['sha256'][:12]}...; restore it or optimize again"
            )
        files[f"{module_dir}/{ref['path']}" if module_dir else ref["path"]] = data
    return files


def copy_references(state: ir.FunctionState, source: Path, target: Path) -> None:
    """Copy the files `state` references from beside one lock to beside another."""
    for ref in references(state):
        there = target / ref["path"]
        if not there.is_file():
            there.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(there, (source / ref["path"]).read_bytes())


# `promptcast inspect`: images shown as one line each, never as base64 -------------------------


def input_value(raw: str, annotation: Any) -> Any:
    """An `--input` value for a History (a JSON array of turns) or image input (a path, an
    http(s) or data URL; a JSON array of them for a list); None for any other annotation."""
    import json

    from promptcast_runtime import History
    from promptcast_runtime.conversation import is_image_type

    if annotation is History:
        return History.from_data(json.loads(raw))
    if not is_image_type(annotation):
        return None
    if raw.lstrip().startswith("["):
        return [Image(item) for item in json.loads(raw)]
    return Image(raw)


def known_images(values: Any, state: ir.FunctionState, lock_path: Path | None) -> dict[str, str]:
    """Data URL -> description (`<image sha256:... 640x480 image/png from photo.png>`) for the
    images among a call's inputs and its state's demos, which know where they came from."""
    found: dict[str, str] = {}
    root = str((lock_path or Path("promptcast.lock.json")).resolve().parent)

    def note(image: Image) -> None:
        with contextlib.suppress(ImageError):  # the call itself reports it
            found.setdefault(image.url(), image.describe())

    def walk(value: Any) -> None:
        if isinstance(value, Image):
            note(value)
        elif is_image_form(value):
            note(Image.from_json(value, root))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif hasattr(value, "turns"):  # a History
            walk(list(value.turns))

    walk(values)
    for demo in state_demos(state):
        walk(demo)
    return found


def readable_content(content: Any, known: dict[str, str] | None = None) -> str:
    """A message's content for a terminal: text as it is, each image part as one line."""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        if part.get("type") == "text":
            pieces.append(str(part.get("text", "")))
            continue
        url = str((part.get("image_url") or {}).get("url", ""))
        if known and url in known:
            pieces.append(known[url])
        elif url.startswith("data:"):
            try:
                pieces.append(Image.from_data_url(url).describe())
            except ImageError as exc:
                pieces.append(f"<image: {exc}>")
        else:
            pieces.append(f"<image {url}>")
    return "".join(pieces)


def readable_value(value: Any) -> Any:
    """A demo value for a report: each image form as its one-line description, not its bytes."""
    if is_image_form(value):
        try:
            return Image.from_json(value).describe() if "url" in value["image"] else (
                f"<image sha256:{value['image'].get('sha256', '')[:12]}… "
                f"{value['image'].get('mime', '')} from {value['image'].get('path', '')}>"
            )
        except ImageError as exc:
            return f"<image: {exc}>"
    if isinstance(value, dict):
        return {k: readable_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [readable_value(v) for v in value]
    return value
