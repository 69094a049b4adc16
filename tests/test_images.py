"""`Image` inputs: OpenAI `image_url` content parts, demo images locked by hash, never inline.

Request bodies are checked against the OpenAI chat format (a user turn with an image is a list of
`text` / `image_url` parts; every other turn stays a string), the lock stores demo images as
`promptcast.media/<sha256>.<ext>` references beside it, a build ships those files beside the
module that loads them at its first call, and a file that changed is an error, not a silently
different prompt.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import itertools
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from promptcast.codegen.build import plan_build, write_tree
from promptcast.context import candidate
from promptcast.engine.cache import cache_key
from promptcast.lockfile import Lock, LockEntry, LockError, load_lock, save_lock
from promptcast.media import MediaError, readable_content
from promptcast_runtime import (
    Completion,
    History,
    Image,
    ImageError,
    build_step,
    to_jsonable,
    using,
)
from promptcast_runtime.media import image_size, sniff_mime

FIXTURES = Path(__file__).parent / "fixtures" / "convpkg"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from convpkg import steps  # noqa: E402

_counter = itertools.count()


def png(width: int = 3, height: int = 2, shade: int = 0) -> bytes:
    """A real (tiny) PNG of `width` x `height` grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Recorder:
    def __init__(self, answer: str = "[[ ## answer ## ]]\nA cat.\n\n[[ ## completed ## ]]"):
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []

    def complete(self, messages: Any, **params: Any) -> Completion:
        self.bodies.append(json.loads(json.dumps({"messages": list(messages), **params})))
        return Completion(self.answer)


def _check_openai_chat(body: dict[str, Any]) -> None:
    """Every message is OpenAI chat: a string content, or (a user turn with an image) a list
    of `{"type": "text", "text"}` and `{"type": "image_url", "image_url": {"url"}}` parts
    with data URLs of an image type or http(s) URLs."""
    for message in body["messages"]:
        assert set(message) == {"role", "content"}
        content = message["content"]
        if isinstance(content, str):
            continue
        assert message["role"] == "user"
        assert any(p["type"] == "image_url" for p in content)
        for part in content:
            if part["type"] == "text":
                assert set(part) == {"type", "text"} and part["text"]
            else:
                assert set(part) == {"type", "image_url"} and set(part["image_url"]) == {"url"}
                url = part["image_url"]["url"]
                if url.startswith("data:"):
                    head, _, data = url.partition(",")
                    assert head in ("data:image/png;base64", "data:image/jpeg;base64")
                    base64.b64decode(data, validate=True)
                else:
                    assert url.startswith("https://")


def test_an_image_input_is_an_image_url_part_where_its_field_stands(tmp_path: Path) -> None:
    photo = tmp_path / "cat.png"
    photo.write_bytes(png())
    lm = Recorder()
    with candidate(lm=lm):
        assert steps.describe_photo(Image.from_path(photo), "What is it?") == "A cat."
    (body,) = lm.bodies
    _check_openai_chat(body)
    system, user = body["messages"]
    assert isinstance(system["content"], str) and "`photo` (image)" in system["content"]
    assert user["content"] == [
        {"type": "text", "text": "[[ ## photo ## ]]\n"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(png()).decode()},
        },
        {
            "type": "text",
            "text": "\n\n[[ ## question ## ]]\nWhat is it?\n\nRespond with the corresponding output"
            " fields, starting with the field `[[ ## answer ## ]]`, and then ending with the"
            " marker for `[[ ## completed ## ]]`.",
        },
    ]


def test_image_sources_path_url_bytes_base64_and_data_urls(tmp_path: Path) -> None:
    data = png(640, 480)
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    url = f"data:image/png;base64,{b64}"
    for image in (
        Image(str(path)),
        Image.from_path(path),
        Image(data),
        Image.from_bytes(data),
        Image.from_base64(b64),
        Image.from_data_url(url),
        Image(url),
        Image.from_json(Image(data).__promptcast_json__()),
    ):
        assert image.url() == url and image.mime == "image/png"
        assert image.sha256 == hashlib.sha256(data).hexdigest()
        assert image.size() == (640, 480)
    remote = Image.from_url("https://example.org/a.jpg")
    assert remote.is_remote and remote.url() == "https://example.org/a.jpg"
    assert to_jsonable(remote) == {"image": {"url": "https://example.org/a.jpg"}}
    described = Image.from_path(path).describe()
    assert described.startswith("<image sha256:" + hashlib.sha256(data).hexdigest()[:12])
    assert described.endswith(" 640x480 image/png from photo.png>")
    assert Image.from_bytes(b"\xff\xd8\xff\xe0rest").mime == "image/jpeg"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert image_size(b"GIF89a\x05\x00\x07\x00") == (5, 7)


def test_bad_images_are_clear_errors_and_a_path_is_read_only_when_rendered(tmp_path: Path) -> None:
    missing = Image.from_path(tmp_path / "nowhere.png")  # no I/O yet
    with pytest.raises(ImageError, match="nowhere.png: cannot be read"):
        missing.url()
    with pytest.raises(ImageError, match="unknown image type"):
        Image.from_bytes(b"not an image")
    with pytest.raises(ImageError, match="not valid base64"):
        Image.from_base64("***")
    with pytest.raises(ImageError, match="data:<mime>;base64"):
        Image("data:image/png,rawtext")
    with pytest.raises(ImageError, match="http"):
        Image.from_url("ftp://x")
    with pytest.raises(TypeError, match="an Image is made from"):
        Image(3)
    lm = Recorder()
    with candidate(lm=lm), pytest.raises(ImageError, match="input `photo` must be an Image"):
        steps.describe_photo(3, "q")  # type: ignore[arg-type]
    assert lm.bodies == []


def test_plain_turns_stay_strings_and_lists_and_optional_images(tmp_path: Path) -> None:
    a, b = Image.from_bytes(png(shade=1)), Image.from_bytes(png(shade=2))
    lm = Recorder('{"answer": "same"}')
    history = History([{"photos": [a], "note": None, "answer": "same"}])
    with candidate(lm=lm):
        assert steps.compare_photos([a, b], None, history) == "same"
        steps.compare_photos([], b, History())
    first, second = lm.bodies
    for body in (first, second):
        _check_openai_chat(body)
        assert body["response_format"] == {"type": "json_object"}
    system, turn_user, turn_answer, user = first["messages"]
    assert isinstance(system["content"], str) and "`photos` (list of image)" in system["content"]
    assert isinstance(turn_answer["content"], str)
    urls = [p["image_url"]["url"] for p in user["content"] if p["type"] == "image_url"]
    assert urls == [a.url(), b.url()]
    texts = [p["text"] for p in user["content"] if p["type"] == "text"]
    assert texts[0] == "[[ ## photos ## ]]\n" and texts[1] == "\n"  # between the two images
    assert texts[2].startswith("\n\n[[ ## note ## ]]\nnull\n\n")
    assert [p["type"] for p in turn_user["content"]].count("image_url") == 1
    # No image in the call: its user turn is one string, as a text-only step's.
    last = second["messages"][-1]["content"]
    assert isinstance(last, list) and [p["type"] for p in last].count("image_url") == 1
    assert "[[ ## photos ## ]]\n[]" in last[0]["text"]


def test_a_text_step_request_is_unchanged_by_images_existing() -> None:
    spec = {
        "api": 2, "step": "app:f", "kind": "predict", "instructions": "Do.",
        "inputs": {"q": "A question."}, "outputs": {"answer": ""}, "shape": "single",
        "demos": ({"q": "x", "answer": "y"},), "adapter": "chat", "lm_params": {},
        "options": {"parse_retries": 0},
    }  # fmt: skip
    step = build_step(spec, inputs={"q": str}, returns=str)
    assert step.conversation is None
    assert all(isinstance(m["content"], str) for m in step.messages({"q": "z"}))


def test_the_dspy_adapter_refuses_an_image_clearly() -> None:
    spec = {
        "api": 2, "step": "app:f", "kind": "predict", "instructions": "Do.",
        "inputs": {"photo": ""}, "outputs": {"answer": ""}, "shape": "single", "demos": (),
        "adapter": "dspy", "lm_params": {}, "options": {"parse_retries": 0},
    }  # fmt: skip
    with pytest.raises(ValueError, match="'dspy' adapter .* does not render an Image"):
        build_step(spec, inputs={"photo": Image}, returns=str)


def _import_built(path: Path) -> Any:
    name = f"built_convpkg_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _image_demo_lock(tmp_path: Path) -> tuple[Path, Image, Any]:
    """A lock (saved and read back) whose describe_photo demo holds an image."""
    demo_image = Image.from_bytes(png(4, 4, shade=9))
    state_demos = ({"photo": to_jsonable(demo_image), "question": "Colour?", "answer": "Grey."},)
    qualname = "convpkg.steps:describe_photo"
    from promptcast import ir

    state = ir.FunctionState("Answer the question about the photo.", state_demos)
    lock_path = tmp_path / "proj" / "promptcast.lock.json"
    lock_path.parent.mkdir()
    save_lock(Lock({qualname: LockEntry(steps.describe_photo.signature.hash(), state)}), lock_path)
    return lock_path, demo_image, state


def test_lock_stores_demo_images_by_hash_and_path_never_inline(tmp_path: Path) -> None:
    lock_path, image, state = _image_demo_lock(tmp_path)
    text = lock_path.read_text()
    assert "base64" not in text and "data:" not in text
    demo = json.loads(text)["functions"]["convpkg.steps:describe_photo"]["state"]["demos"][0]
    rel = f"promptcast.media/{image.sha256}.png"
    assert demo["photo"] == {"image": {"mime": "image/png", "path": rel, "sha256": image.sha256}}
    assert (lock_path.parent / rel).read_bytes() == image.data()
    # Read back and saved again: the same lock, the bytes written once.
    lock = load_lock(lock_path)
    save_lock(lock, lock_path)
    assert lock_path.read_text() == text
    assert sorted(p.name for p in (lock_path.parent / "promptcast.media").iterdir()) == [
        f"{image.sha256}.png"
    ]
    # Development calls read the same lock's images: the prompt the optimizer scored.
    dev_lm = Recorder()
    with candidate(states={"convpkg.steps:describe_photo": state}, lm=dev_lm):
        steps.describe_photo(Image.from_bytes(png()), "And this?")
    from promptcast.context import SETTINGS

    SETTINGS.lock_path, before = lock_path, SETTINGS.lock_path
    try:
        locked_lm = Recorder()
        with candidate(lm=locked_lm):
            steps.describe_photo(Image.from_bytes(png()), "And this?")
    finally:
        SETTINGS.lock_path = before
    assert locked_lm.bodies == dev_lm.bodies
    demo_turn = dev_lm.bodies[0]["messages"][1]["content"]
    assert demo_turn[1] == {"type": "image_url", "image_url": {"url": image.url()}}


def test_build_ships_the_images_and_the_module_loads_them_lazily_checked(tmp_path: Path) -> None:
    lock_path, image, state = _image_demo_lock(tmp_path)
    out = tmp_path / "out"
    write_tree(plan_build(FIXTURES / "convpkg", load_lock(lock_path)), out)
    shipped = out / "convpkg" / "promptcast.media" / f"{image.sha256}.png"
    assert shipped.read_bytes() == image.data()
    module_text = (out / "convpkg" / "steps.py").read_text()
    assert "media=__file__," in module_text and "base64" not in module_text
    assert module_text.count("media=__file__") == 1  # only the step with image demos
    built = _import_built(out / "convpkg" / "steps.py")
    built_lm, dev_lm = Recorder(), Recorder()
    call = (Image.from_bytes(png()), "And this?")
    with using(built_lm):
        built.describe_photo(*call)
    with candidate(states={"convpkg.steps:describe_photo": state}, lm=dev_lm):
        steps.describe_photo(*call)
    assert built_lm.bodies == dev_lm.bodies
    _check_openai_chat(built_lm.bodies[0])
    # A shipped file that changed: the call fails, naming it, instead of sending other pixels.
    shipped.write_bytes(png(4, 4, shade=10))
    rebuilt = _import_built(out / "convpkg" / "steps.py")
    with using(Recorder()), pytest.raises(ImageError, match="changed: its bytes hash to"):
        rebuilt.describe_photo(*call)
    shipped.unlink()
    again = _import_built(out / "convpkg" / "steps.py")  # importing reads nothing
    with using(Recorder()), pytest.raises(ImageError, match="cannot be read"):
        again.describe_photo(*call)


def test_a_tampered_or_missing_lock_image_fails_the_build(tmp_path: Path) -> None:
    lock_path, image, _ = _image_demo_lock(tmp_path)
    stored = lock_path.parent / "promptcast.media" / f"{image.sha256}.png"
    stored.write_bytes(png(4, 4, shade=1))
    with pytest.raises(MediaError, match="changed"):
        plan_build(FIXTURES / "convpkg", load_lock(lock_path))
    stored.unlink()
    with pytest.raises(MediaError, match="missing"):
        plan_build(FIXTURES / "convpkg", load_lock(lock_path))


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"path": "../../etc/passwd", "sha256": "0" * 64, "mime": "image/png"}, "is not promptcast.media"),
        ({"path": f"promptcast.media/{'a' * 64}.png", "sha256": "b" * 64, "mime": "image/png"}, "does not name its sha256"),
        ({"url": "data:image/png;base64,AAAA"}, "inline image data is never stored"),
        ({"path": f"promptcast.media/{'a' * 64}.png", "sha256": "a" * 64, "mime": "text/html"}, "not an image type"),
    ],
)
def test_a_lock_with_a_bad_image_reference_is_refused(tmp_path: Path, form: Any, problem: str) -> None:
    lock_path, _, _ = _image_demo_lock(tmp_path)
    data = json.loads(lock_path.read_text())
    data["functions"]["convpkg.steps:describe_photo"]["state"]["demos"][0]["photo"] = {"image": form}
    lock_path.write_text(json.dumps(data))
    with pytest.raises(LockError, match=problem):
        load_lock(lock_path)


def test_inspect_shows_images_as_one_line_each(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(png(640, 480))
    digest = hashlib.sha256(png(640, 480)).hexdigest()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "promptcast"),
            "inspect",
            "convpkg.steps:describe_photo",
            "-i",
            f"photo={photo}",
            "-i",
            "question=What?",
            "--lock",
            str(tmp_path / "none.json"),
        ],
        capture_output=True,
        text=True,
        cwd=FIXTURES,
    )
    assert result.returncode == 0, result.stderr
    assert f"[[ ## photo ## ]]\n<image sha256:{digest[:12]}… 640x480 image/png from photo.png>\n\n" in result.stdout
    assert "base64" not in result.stdout and len(result.stdout) < 2000
    parts = [{"type": "text", "text": "a "}, {"type": "image_url", "image_url": {"url": "https://x.org/c.jpg"}}]
    assert readable_content(parts) == "a <image https://x.org/c.jpg>"


def test_the_cache_key_of_list_content_is_deterministic() -> None:
    a, b = Image.from_bytes(png(shade=1)), Image.from_bytes(png(shade=2))

    def messages(image: Image) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"type": "text", "text": "x"}, image.content_part()]}]

    key = cache_key("openai/m", messages(a), {"temperature": 0.0, "max_tokens": 5})
    assert key == cache_key("openai/m", messages(a), {"max_tokens": 5, "temperature": 0.0})
    assert key != cache_key("openai/m", messages(b), {"temperature": 0.0, "max_tokens": 5})
    as_text = [{"role": "user", "content": json.dumps(messages(a)[0]["content"])}]
    assert key != cache_key("openai/m", as_text, {"temperature": 0.0, "max_tokens": 5})


def test_reports_show_demo_images_and_image_parts_as_one_line() -> None:
    from promptcast import ir
    from promptcast.reporting.html import messages_text, state_html

    image = Image.from_bytes(png(8, 8))
    state = ir.FunctionState("Do.", ({"photo": to_jsonable(image), "answer": "x"},))
    page = state_html(state)
    assert "base64" not in page and f"sha256:{image.sha256[:12]}" in page
    text = messages_text([{"role": "user", "content": [{"type": "text", "text": "a "}, image.content_part()]}])
    assert text == f"----- user -----\na <image sha256:{image.sha256[:12]}… 8x8 image/png>"


def test_data_file_values_become_histories_and_images(tmp_path: Path) -> None:
    """A data file gives a history as a JSON array of turns and images as paths or URLs; bound
    examples hold History and Image values, so demos lock them by hash, not as path text."""
    from promptcast.commands.common import _converter

    photo = tmp_path / "p.png"
    photo.write_bytes(png())
    image = _converter(Image)(str(photo))
    assert isinstance(image, Image) and image.sha256 == hashlib.sha256(png()).hexdigest()
    many = _converter(list[Image])([str(photo), "https://x.org/a.png"])
    assert [type(i) for i in many] == [Image, Image] and many[1].is_remote
    assert _converter(Image | None)(None) is None
    history = _converter(History)([{"message": "a", "answer": "positive"}])
    assert isinstance(history, History) and len(history) == 1
    assert to_jsonable({"photo": image})["photo"]["image"]["sha256"] == image.sha256
