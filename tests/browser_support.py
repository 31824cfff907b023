"""Headless Chromium for the tests that look at a page as a person would: find Debian's `chromium`,
run it once per look (`--dump-dom` or `--screenshot`) on a fresh profile, read the DOM it printed
and the PNG it wrote. Only the standard library: html.parser for the DOM, zlib + struct for PNG.

Chromium comes from Debian's package (scripts/install-chromium.sh); nothing here downloads a
browser. A test that needs it and does not find it fails, saying how to install it."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "run `bash scripts/install-chromium.sh` as root (it installs Debian's chromium package)"

# Headless, and quiet: no first-run UI, no network of its own (updates, sync, QUIC probes), no GPU.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--force-color-profile=srgb",
)


def find_chromium() -> str | None:
    """$CHROMIUM when set (and then only it), else Debian's /usr/bin/chromium, else a `chromium` on
    the PATH."""
    explicit = os.environ.get("CHROMIUM")
    candidates = [explicit] if explicit else [DEFAULT_CHROMIUM, shutil.which("chromium")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_chromium() -> str:
    """The browser, or a failed test (never a skipped one) that says how to install it."""
    path = find_chromium()
    if path is None:
        pytest.fail(
            f"headless Chromium is needed and was not found "
            f"({os.environ.get('CHROMIUM') or DEFAULT_CHROMIUM}): {INSTALL_HINT}",
            pytrace=False,
        )
    return path


@dataclass
class Run:
    stdout: str
    stderr: str

    def csp_violations(self) -> list[str]:
        """What the page's console said about its Content-Security-Policy (Chromium logs the page's
        console to stderr with --enable-logging=stderr): a refused style, script or load."""
        return [line for line in self.stderr.splitlines() if "Content Security Policy" in line]


def run_chromium(chromium: str, url: str, *args: str, timeout: float = 30.0) -> Run:
    """One headless Chromium on a new, empty profile, logging the page's console to stderr."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        completed = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args, url],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    if completed.returncode != 0:
        raise AssertionError(f"chromium exited {completed.returncode} on {url}:\n{completed.stderr[-3000:]}")
    return Run(completed.stdout, completed.stderr)


def dump_dom(chromium: str, url: str) -> tuple[Element, Run]:
    """The DOM after load, as Chromium serialised it, parsed."""
    run = run_chromium(chromium, url, "--dump-dom")
    assert run.stdout.strip(), f"chromium printed no DOM for {url}:\n{run.stderr[-3000:]}"
    return parse_html(run.stdout), run


def screenshot(chromium: str, url: str, path: Path, width: int, height: int) -> tuple[Png, Run]:
    """A screenshot of the viewport (width x height CSS pixels, one device pixel each)."""
    path.unlink(missing_ok=True)
    run = run_chromium(chromium, url, f"--screenshot={path}", f"--window-size={width},{height}")
    assert path.exists(), f"chromium wrote no screenshot for {url}:\n{run.stderr[-3000:]}"
    return read_png(path.read_bytes()), run


# -- the DOM ------------------------------------------------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        """Descendants (and self) with the tag whose attributes include `attrs` (class_ for class,
        matched as one of the class names)."""
        wanted = {k.rstrip("_"): v for k, v in attrs.items()}
        found = []
        for element in self.iter():
            if element.tag != tag:
                continue
            if all(_matches(element.attrs.get(name), name, value) for name, value in wanted.items()):
                found.append(element)
        return found

    def find(self, tag: str, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def rows(self, section: str = "tbody") -> list[list[str]]:
        """A table's rows (of its tbody or thead), each cell's text stripped."""
        return [
            [
                cell.text().strip()
                for cell in row.children
                if isinstance(cell, Element) and cell.tag in ("td", "th")
            ]
            for part in self.find_all(section)
            for row in part.find_all("tr")
        ]


def _matches(have: str | None, name: str, value: str) -> bool:
    return value in (have or "").split() if name == "class" else have == value


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    """The document as a tree of elements (attribute names lowercased, as html.parser does)."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


# -- PNG ----------------------------------------------------------------------------------------------
@dataclass
class Png:
    width: int
    height: int
    pixels: list[bytes]  # one row each: RGB, 3 bytes a pixel

    def colours(self) -> set[tuple[int, int, int]]:
        found: set[tuple[int, int, int]] = set()
        for row in self.pixels:
            found.update(zip(row[0::3], row[1::3], row[2::3], strict=True))
        return found

    def where(self, colour: tuple[int, int, int]) -> list[tuple[int, int]]:
        """The (x, y) of every pixel of exactly `colour`."""
        target = bytes(colour)
        found = []
        for y, row in enumerate(self.pixels):
            index = row.find(target)
            while index >= 0:
                if index % 3 == 0:
                    found.append((index // 3, y))
                index = row.find(target, index + 1)
        return found

    def rows_not(self, colour: tuple[int, int, int], x0: int = 0, x1: int | None = None) -> int:
        """How many rows have a pixel of another colour than `colour` (between columns x0 and x1)."""
        x1 = self.width if x1 is None else x1
        plain = bytes(colour) * (x1 - x0)
        return sum(1 for row in self.pixels if row[3 * x0 : 3 * x1] != plain)


def read_png(data: bytes) -> Png:
    """Decode an 8-bit, non-interlaced greyscale, RGB or RGBA PNG (what Chromium writes) to RGB rows;
    alpha is dropped (a screenshot is opaque)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, bytearray(), None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in the PNG's {kind!r} chunk"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        offset += 12 + length
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type)
    assert depth == 8 and channels and not interlace, f"unsupported PNG: {header}"
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    assert len(raw) == height * (stride + 1), "PNG data of the wrong size"
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        filter_type = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(filter_type, line, previous, channels)
        rows.append(_to_rgb(bytes(line), colour_type))
        previous = line
    return Png(width, height, rows)


def _unfilter(filter_type: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    if filter_type == 0:
        return
    if filter_type == 1:  # Sub
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif filter_type == 2:  # Up
        for i in range(len(line)):
            line[i] = (line[i] + previous[i]) & 0xFF
    elif filter_type == 3:  # Average
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
    elif filter_type == 4:  # Paeth
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + predictor) & 0xFF
    else:
        raise AssertionError(f"bad PNG filter type {filter_type}")


def _to_rgb(line: bytes, colour_type: int) -> bytes:
    if colour_type == 2:
        return line
    if colour_type == 6:
        out = bytearray(len(line) // 4 * 3)
        out[0::3], out[1::3], out[2::3] = line[0::4], line[1::4], line[2::4]
        return bytes(out)
    grey = line if colour_type == 0 else line[0::2]
    out = bytearray(len(grey) * 3)
    out[0::3] = out[1::3] = out[2::3] = grey
    return bytes(out)
