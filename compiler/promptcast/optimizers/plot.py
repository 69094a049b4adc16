"""A tiny PNG scatter plot with the standard library only (zlib + struct).

Why not matplotlib: it is not a dependency of the compiler, and a report must not need one.
The plot is deliberately plain -- axes, grid lines at round values, every candidate as a dot,
the best-so-far as a step line, the winner ringed -- and the numbers live in the markdown
report beside it, so no text rendering is needed here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
GRID: Color = (225, 225, 225)
AXIS: Color = (60, 60, 60)
DOT: Color = (70, 110, 200)
BEST: Color = (220, 120, 30)


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * (y * self.width + x)
            self.pixels[i : i + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            self.set(round(x0 + (x1 - x0) * s / steps), round(y0 + (y1 - y0) * s / steps), color)

    def disc(self, cx: int, cy: int, r: int, color: Color, ring: bool = False) -> None:
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                d = dx * dx + dy * dy
                if d <= r * r and (not ring or d >= (r - 1.5) ** 2):
                    self.set(cx + dx, cy + dy, color)

    def png(self) -> bytes:
        rows = b"".join(
            b"\x00" + bytes(self.pixels[3 * y * self.width : 3 * (y + 1) * self.width])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b"")
        )


def score_vs_calls(
    points: Sequence[tuple[int, float]], winner: int | None, width: int = 640, height: int = 360
) -> bytes:
    """PNG: x = LM requests spent when each candidate was scored, y = its dev score (0-1)."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 40, width - 20, 20, height - 30
    max_x = max((x for x, _ in points), default=1) or 1

    def px(x: float) -> int:
        return round(left + (right - left) * x / max_x)

    def py(y: float) -> int:
        return round(bottom - (bottom - top) * max(0.0, min(1.0, y)))

    for tick in (0.25, 0.5, 0.75, 1.0):
        canvas.line(left, py(tick), right, py(tick), GRID)
    canvas.line(left, bottom, right, bottom, AXIS)
    canvas.line(left, bottom, left, top, AXIS)
    best = None
    previous: tuple[int, int] | None = None
    for x, y in points:
        best = y if best is None else max(best, y)
        here = (px(x), py(best))
        if previous is not None:
            canvas.line(previous[0], previous[1], here[0], previous[1], BEST)
            canvas.line(here[0], previous[1], here[0], here[1], BEST)
        previous = here
    for i, (x, y) in enumerate(points):
        canvas.disc(px(x), py(y), 3, DOT)
        if i == winner:
            canvas.disc(px(x), py(y), 7, BEST, ring=True)
    return canvas.png()
