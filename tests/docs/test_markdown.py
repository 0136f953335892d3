"""The docs runner's own parser: what it runs, skips and compares (pure, no subprocess)."""

from __future__ import annotations

import pytest

from ._markdown import Block, commands, output_pattern, parse

PAGE = """# A page

```python
print("one")
```

<!-- output -->
```text
one
```

<!-- not-run: needs a real key -->
```python
raise SystemExit(1)
```

<!-- xfail: the library cannot yet -->
```python
import missing
```

  ```python
  print("indented, inside a list")
  ```

<!-- run -->
```console
$ debitura-async --version   # the version
$ debitura-async ingest a.csv \\
      --map caseId=Id
output line
```
"""


def test_blocks_markers_and_outputs() -> None:
    blocks = parse(PAGE, "page.md")
    assert [(b.lang, b.marker) for b in blocks] == [
        ("python", None),
        ("python", "not-run"),
        ("python", "xfail"),
        ("python", None),
        ("console", "run"),
    ]
    first, skipped, failing, indented, console = blocks
    assert first == Block("page.md", 3, "python", 'print("one")\n', expected_output="one\n")
    assert skipped.marker_arg == "needs a real key"
    assert failing.marker_arg == "the library cannot yet"
    assert indented.code == 'print("indented, inside a list")\n'
    assert commands(console) == [
        "debitura-async --version",
        "debitura-async ingest a.csv --map caseId=Id",
    ]


def test_commands_without_prompts_are_every_non_comment_line() -> None:
    block = Block("p.md", 1, "console", "# set up\npip install .\n\ndebitura-async demo\n")
    assert commands(block) == ["pip install .", "debitura-async demo"]


@pytest.mark.parametrize(
    ("shown", "printed", "matches"),
    [
        ("a\nb\n", "a\nb\n", True),
        ("a\nb\n", "a\nb\nc\n", False),
        ("a\n", "a\n\n", False),
        ("took ... s\n", "took 1.5 s\n", True),
        ("took ... s\n", "took 1.5 s\nmore\n", False),
        ("x ... y\n", "x a\nb y\n", False),  # an in-line ellipsis stays on its line
        ("...\nend\n", "l1\nl2\nend\n", True),
        ("...\nend\n", "end\n", True),
        ("a (1+1) [x]\n", "a (1+1) [x]\n", True),  # regex characters are literal
    ],
)
def test_output_pattern(shown: str, printed: str, matches: bool) -> None:
    assert (output_pattern(shown).fullmatch(printed) is not None) is matches


@pytest.mark.parametrize(
    "text",
    [
        "<!-- output -->\n```text\nx\n```\n",  # an output with no example before it
        "```python\nx = 1\n",  # never closed
        "<!-- skip -->\n```python\nx = 1\n```\n",  # an unknown marker
    ],
)
def test_malformed_pages_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"output block|never closed|unknown docs marker"):
        parse(text, "bad.md")
