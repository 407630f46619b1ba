"""The Python code blocks of the user-facing docs (README.md, docs/user-guide.md), each with the profile it is
written for, so that tests/docs runs every one in a real kernel of that profile. Pure: parsing only.

Every ```python block is preceded (on the line before its fence) by an HTML comment, which Markdown renders as
nothing:

    <!-- doc-test profile=datascience spark=1
    setup:
    model = ...            # hidden code run first, in the same kernel (what the prose takes as given)
    check:
    assert d.version == 1  # hidden code run after the block: what the docs show, checked where it is stable
    -->

`profile` is a demo profile's slug (config/demo/profiles.yaml); `spark=N` says the block needs a Spark cluster of N
workers. The blocks of one document that name the same profile run in order in one kernel of one server of that
profile (with the largest Spark cluster any of them asks for).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ("README.md", "docs/user-guide.md")  # relative to ROOT: the documents whose Python blocks must all run

_FENCE = re.compile(r"^```python\s*$")
_MARKER = re.compile(r"^<!--\s*doc-test\b(?P<args>[^\n]*?)\s*$")
_ARG = re.compile(r"^(?P<key>[a-z]+)=(?P<value>[A-Za-z0-9_.-]+)$")


class DocBlockError(ValueError):
    """A Python block without a valid doc-test marker (the message names file and line)."""


@dataclass(frozen=True)
class DocBlock:
    doc: str      # relative path
    line: int     # 1-based line of the ```python fence
    profile: str
    spark: int    # Spark workers the block needs (0: none)
    setup: str
    code: str
    check: str

    @property
    def session(self) -> tuple[str, str]:
        """Blocks sharing a session run in one kernel, in document order."""
        return (self.doc, self.profile)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def _marker(lines: list[str], end: int, doc: str, fence_line: int) -> tuple[dict, str, str]:
    """The marker comment whose last line (`-->`) is lines[end]; returns (args, setup, check)."""
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        raise DocBlockError(f"{doc}:{fence_line}: a ```python block needs a '<!-- doc-test profile=... -->' "
                            "comment on the line before it (see tests/support/docblocks.py)")
    start = end
    while start >= 0 and not lines[start].lstrip().startswith("<!--"):
        start -= 1
    if start < 0:
        raise DocBlockError(f"{doc}:{fence_line}: unterminated doc-test comment")
    body = lines[start:end + 1]
    body[-1] = body[-1].rstrip()[:-3]
    first = _MARKER.match(body[0].rstrip())
    if not first:
        raise DocBlockError(f"{doc}:{fence_line}: the comment before the block is not a doc-test marker")
    args = {}
    for word in first.group("args").split():
        m = _ARG.match(word)
        if not m:
            raise DocBlockError(f"{doc}:{fence_line}: bad doc-test argument {word!r} (key=value)")
        args[m.group("key")] = m.group("value")
    sections = {"setup": [], "check": []}
    current = None
    for raw in body[1:]:
        if raw.strip() in ("setup:", "check:"):
            current = raw.strip()[:-1]
            continue
        if current is None:
            if raw.strip():
                raise DocBlockError(f"{doc}:{fence_line}: doc-test text outside 'setup:' or 'check:': {raw!r}")
            continue
        sections[current].append(raw)
    return args, "\n".join(sections["setup"]).strip("\n"), "\n".join(sections["check"]).strip("\n")


def parse(text: str, doc: str) -> list[DocBlock]:
    """Every ```python block of `text` with its marker; raises DocBlockError for a block without a valid one."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if not _FENCE.match(lines[i]):
            i += 1
            continue
        fence_line = i + 1
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j == len(lines):
            raise DocBlockError(f"{doc}:{fence_line}: unterminated ```python block")
        args, setup, check = _marker(lines, i - 1, doc, fence_line)
        unknown = set(args) - {"profile", "spark"}
        if unknown or "profile" not in args:
            raise DocBlockError(f"{doc}:{fence_line}: the doc-test marker needs profile=<slug> "
                                f"(and optionally spark=<workers>), not {sorted(unknown) or 'nothing'}")
        spark = args.get("spark", "0")
        if not spark.isdigit():
            raise DocBlockError(f"{doc}:{fence_line}: spark= takes a number of workers, not {spark!r}")
        blocks.append(DocBlock(doc, fence_line, args["profile"], int(spark), setup, "\n".join(lines[i + 1:j]),
                               check))
        i = j + 1
    return blocks


def all_blocks() -> list[DocBlock]:
    """The Python blocks of every document in DOCS, in document order."""
    out = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            out.extend(parse(f.read(), doc))
    return out


def sessions(blocks: list[DocBlock]) -> dict[tuple[str, str], list[DocBlock]]:
    """Blocks grouped by session, each group in document order (dicts keep first-seen order)."""
    out: dict[tuple[str, str], list[DocBlock]] = {}
    for b in blocks:
        out.setdefault(b.session, []).append(b)
    return out
