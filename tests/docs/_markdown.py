"""Pure: the fenced code blocks of the Markdown docs, with the markers that say how to run them.

A marker is an HTML comment (invisible on the site) on the line right before a fence:

* ``<!-- not-run: REASON -->`` — a ``python`` block that is shown, not run (keep these rare;
  never in the README);
* ``<!-- xfail: REASON -->`` — a ``python`` block that cannot work yet because of a library
  defect: the test is ``xfail(strict=True)``, so it fails the day the library is fixed and the
  marker must go;
* ``<!-- output -->`` — a ``text`` block right after a ``python`` block: what the example prints
  (``...`` inside a line matches any text; a line of its own ``...`` matches any lines);
* ``<!-- run -->`` — a ``console`` block whose ``$`` commands are executed;
* ``<!-- file: PATH -->`` — a block quoting a project file (``docs/testing.md``): not a script,
  it is checked verbatim and run as part of a pytest project by ``tests/plugin/test_docs.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^(?P<indent> *)(?P<ticks>`{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^ *<!--\s*(?P<kind>[a-z-]+)(?::\s*(?P<arg>.*?))?\s*-->\s*$")
MARKERS = frozenset({"not-run", "xfail", "output", "run", "file"})


@attrs.frozen
class Block:
    path: str
    """Relative to the repository root."""
    line: int
    """1-based line of the opening fence."""
    lang: str
    code: str
    marker: str | None = None
    marker_arg: str | None = None
    expected_output: str | None = None

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _marker_before(lines: list[str], index: int) -> tuple[str | None, str | None]:
    if index == 0:
        return None, None
    match = _MARKER.match(lines[index - 1])
    if match is None:
        return None, None
    kind = match["kind"]
    if kind not in MARKERS:
        raise ValueError(f"line {index}: unknown docs marker {kind!r} (known: {sorted(MARKERS)})")
    return kind, match["arg"]


def parse(text: str, path: str) -> list[Block]:
    """Every fenced block of ``text``; ``output`` blocks are attached to the block before."""
    lines = text.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        indent, ticks = len(fence["indent"]), fence["ticks"]
        lang = fence["info"].strip().split(" ")[0] if fence["info"].strip() else ""
        end = i + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: fence never closed")
        body = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
        kind, arg = _marker_before(lines, i)
        if kind == "output":
            if not blocks or blocks[-1].lang != "python" or blocks[-1].expected_output is not None:
                raise ValueError(f"{path}:{i + 1}: an output block must follow a python block")
            blocks[-1] = attrs.evolve(blocks[-1], expected_output=body)
        else:
            blocks.append(Block(path, i + 1, lang, body, kind, arg))
        i = end + 1
    return blocks


def all_blocks(root: Path = ROOT) -> list[Block]:
    out: list[Block] = []
    for file in doc_files(root):
        out.extend(parse(file.read_text(encoding="utf-8"), file.relative_to(root).as_posix()))
    return out


def output_pattern(expected: str) -> re.Pattern[str]:
    """``expected`` as a regex over the whole stdout, with ``...`` as the wildcard."""
    parts: list[str] = []
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(r"[^\n]*?".join(re.escape(piece) for piece in line.split("...")) + r"\n")
    return re.compile("".join(parts))


def commands(block: Block) -> list[str]:
    """The command lines of a console block: ``$ `` lines, or every non-comment line if none
    has a prompt; a trailing backslash joins the next line."""
    raw = block.code.rstrip("\n").split("\n")
    prompted = any(line.startswith("$ ") for line in raw)
    out: list[str] = []
    pending: str | None = None
    for line in raw:
        if pending is not None:
            pending += " " + line.strip()
        elif prompted and line.startswith("$ "):
            pending = line[2:]
        elif not prompted and line.strip() and not line.lstrip().startswith("#"):
            pending = line.strip()
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        out.append(pending.split(" #")[0].strip())
        pending = None
    return out
