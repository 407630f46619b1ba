"""One voice to users: every message the platform API, the hub and the notebook side write for users reads the
same way, and sizes are written in one unit convention by one formatter.

An AST walk over every module of odh_spawner/ and server_extension/ finds the literal messages (str constants,
and f-strings through their constant parts) given as the message argument to

- a class whose name ends in `Error` or `Exception` (`raise IngestError("…")`, `ValueError("…")`,
  `SpawnException("…")`, wherever it is built), or any other exception class these packages define
  (`ForbiddenOption`, `DeploymentNotFound`, `BackendFailed`, …), the first argument;
- `web.HTTPError(status, "…")`, `user_error(status, "…")` and `OdhApiError(status, "…")`, the second;
- `BadRequest("…")`, the first;
- a dict literal's `"message"` value (`{"message": "…"}`).

A message given as `a if c else b`, `"…" + x`, `"…" % x` or as implicitly joined literals is checked on each
literal branch (`+`: its first part for the start, its last for the end); a bare `"%s"` (the message is the
argument after it) is a placeholder, not a literal message. Log calls (`log.info(…)` etc.) are
not user messages; they are none of the forms above, so they are not checked.

Each literal message must

1. start with an upper-case letter, a digit, or a quoted identifier (`'…'`, `"…"` or a backquote), or with a
   placeholder (`f"{name} is taken."`): sentence case;
2. end with `.`, `?` or `!` (a closing quote or bracket may follow it), so that it reads as a sentence; for an
   f-string, that is its last constant part. An f-string may end in a placeholder only when the placeholder is
   itself a message, i.e. a bare name, attribute or `str(name)` whose name says so: one of MESSAGE_NAMES (`e`,
   `exc`, `err`, `error`, `reason`, `message`, `msg`, `detail`, `why`, `failure`, `problem`), without `!r`,
   and after a `: ` or `; ` (`f"Could not start your server: {e}"`). Those messages come from typed errors
   that this test checks where they are raised.

Where the user can do something, a message says what ("…; try again later.", "…; tell your platform admin.",
"Choose …"); that is for review, not for this test.

Sizes: bytes are written in IEC binary units with a space and at most one decimal, trailing `.0` dropped
(`512 B`, `2 KiB`, `1.5 GiB`), by `odh_spawner.quantities.format_bytes` in Python (the notebook side ships that
module) and `formatBytes` in labextension/src/units.ts. Kubernetes quantities (`2Gi`, `format_memory`) appear only
where they are Kubernetes fields, or where a message quotes the syntax of a setting written that way (`like '2Gi'`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("odh_spawner", "server_extension")

# Being reworked by other branches right now; they will be brought in line when those land.
EXEMPT: set[str] = set()  # every module speaks the same way now

MESSAGE_NAMES = {"e", "exc", "err", "error", "reason", "message", "msg", "detail", "why", "failure", "problem"}
SECOND_ARG = {"HTTPError", "user_error", "OdhApiError"}
FIRST_ARG = {"BadRequest"}
_START = re.compile(r"""^\s*(?:[A-Z0-9]|['"`])""")
_END = re.compile(r"""[.?!][)'"`\]]*\s*$""")


def _project_errors() -> set[str]:
    """The exception classes odh_spawner/ and server_extension/ define, whatever their names end in."""
    bases = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    bases[node.name] = [_name(b) for b in node.bases]
    found: set[str] = set()
    while True:
        more = {c for c, bs in bases.items() if c not in found
                and any(b.endswith(("Error", "Exception")) or b in found for b in bs)}
        if not more:
            return found
        found |= more


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _messages(node: ast.expr):
    """The literal messages of one message argument: Constant and JoinedStr nodes, through branches."""
    if isinstance(node, (ast.Constant, ast.JoinedStr)):
        if isinstance(node, ast.JoinedStr) or (isinstance(node.value, str) and node.value != "%s"):
            yield node, node
    elif isinstance(node, ast.IfExp):
        yield from _messages(node.body)
        yield from _messages(node.orelse)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        firsts, lasts = list(_messages(node.left)), list(_messages(node.right))
        for (start, _), (_, end) in zip(firsts or [(None, None)], lasts or [(None, None)]):
            yield start, end
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        yield from _messages(node.left)


def _message_args(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            index = 1 if name in SECOND_ARG else 0 if (name in FIRST_ARG or name in ERRORS
                                                          or name.endswith(("Error", "Exception"))) else None
            if index is not None and len(node.args) > index:
                yield node.args[index]
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == "message":
                    yield v


def _is_message_placeholder(value: ast.FormattedValue) -> bool:
    expr = value.value
    if isinstance(expr, ast.Call) and _name(expr.func) == "str" and len(expr.args) == 1:
        expr = expr.args[0]
    name = _name(expr) if isinstance(expr, (ast.Name, ast.Attribute)) else ""
    return name in MESSAGE_NAMES and value.conversion in (-1, ord("s"))


def _problems(start: ast.expr | None, end: ast.expr | None) -> list[str]:
    problems = []
    if isinstance(start, ast.Constant):
        if not _START.match(start.value):
            problems.append("does not start with an upper-case letter")
    elif isinstance(start, ast.JoinedStr) and start.values:
        first = start.values[0]
        if isinstance(first, ast.Constant) and not _START.match(first.value):
            problems.append("does not start with an upper-case letter")
    if isinstance(end, ast.Constant):
        if not _END.search(end.value):
            problems.append("does not end with '.', '?' or '!'")
    elif isinstance(end, ast.JoinedStr) and end.values:
        last = end.values[-1]
        if isinstance(last, ast.Constant):
            if not _END.search(last.value):
                problems.append("does not end with '.', '?' or '!'")
        else:
            before = end.values[-2].value if len(end.values) > 1 and isinstance(end.values[-2], ast.Constant) else ""
            if not (_is_message_placeholder(last) and before.endswith((": ", "; "))):
                problems.append("ends in a placeholder that is not itself a message (after ': ')")
    return problems


ERRORS = _project_errors()


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in EXEMPT:
                yield rel, path


def _findings() -> list[str]:
    found = []
    for rel, path in _modules():
        tree = ast.parse(path.read_text(), filename=rel)
        for arg in _message_args(tree):
            for start, end in _messages(arg):
                for problem in _problems(start, end):
                    text = ast.unparse(arg).replace("\n", " ")
                    found.append(f"{rel}:{arg.lineno}: {problem}: {text[:160]}")
    return found


def test_user_messages_are_sentences():
    found = _findings()
    assert not found, f"{len(found)} messages to fix:\n" + "\n".join(found)


def test_the_projects_own_exception_classes_are_checked():
    assert {"ForbiddenOption", "DeploymentNotFound", "BackendFailed", "BadRequest"} <= ERRORS


def test_the_exempt_files_exist():
    """The exempt set names real files (a rename must not silently widen it)."""
    assert all((ROOT / rel).is_file() for rel in EXEMPT), sorted(r for r in EXEMPT if not (ROOT / r).is_file())


@pytest.mark.parametrize("source, expected", [
    ('raise IngestError("topic is empty")', 2),
    ('raise IngestError("Topic is empty")', 1),
    ('raise IngestError("Topic is empty.")', 0),
    ('raise IngestError(f"{name!r} is taken.")', 0),
    ('raise IngestError(f"`{name}` is taken; choose another name.")', 0),
    ('raise IngestError(f"Could not start: {e}")', 0),
    ('raise IngestError(f"Could not start: {e!r}")', 1),
    ('raise IngestError(f"No such bucket {name}")', 1),
    ('raise web.HTTPError(404, "no such deployment")', 2),
    ('raise web.HTTPError(404)', 0),
    ('raise user_error(503, "Storage is down; try again later.")', 0),
    ('raise OdhApiError(400, "bad")', 2),
    ('raise BadRequest("Bad" if x else "worse.")', 2),
    ('self.finish({"message": "not found"})', 2),
    ('log.error("could not start %s", name)', 0),
    ('raise web.HTTPError(status, "%s", message)', 0),
    ('raise ValueError("Too big (over " + str(n) + " MiB).")', 0),
    ('raise ForbiddenOption("not for you")', 2),
])
def test_the_check_itself(source, expected):
    found = [p for arg in _message_args(ast.parse(source)) for s, e in _messages(arg) for p in _problems(s, e)]
    assert len(found) == expected, found


SIZES = [0, 1, 512, 1023, 1024, 1536, 2047, 10 * 1024, 1024**2 - 1, 1024**2, 512 * 1024**2, 1536 * 1024**2,
         2 * 1024**3, 10**12, 5 * 1024**4, 3 * 1024**5]


def test_one_size_formatter_and_its_convention():
    """The notebook side's size texts (bucket browser, ingestion widget) are the one formatter's, which the
    notebook wheel ships."""
    from odh_spawner.quantities import format_bytes
    from server_extension import ingest_widget, widgets

    assert widgets.format_bytes is format_bytes and ingest_widget.format_bytes is format_bytes
    assert "odh_spawner/quantities.py" in (ROOT / "images/notebook-ext/pyproject.toml").read_text()
    assert [format_bytes(n) for n in (0, 512, 1024, 1536, 10 * 1024, 512 * 1024**2, 1536 * 1024**2, 2 * 1024**3)] \
        == ["0 B", "512 B", "1 KiB", "1.5 KiB", "10 KiB", "512 MiB", "1.5 GiB", "2 GiB"]
    assert format_bytes(1023) == "1023 B" and format_bytes(1024**2 - 1) == "1 MiB"  # rounding carries up
    assert format_bytes(5 * 1024**4) == "5 TiB" and format_bytes(3 * 1024**5) == "3072 TiB"
    assert format_bytes(-2048) == "-2 KiB" and format_bytes(2.5) == "3 B"
    for n in SIZES:  # the shape of every text: a number of at most one decimal, a space, a unit
        assert re.fullmatch(r"-?[0-9]+(\.[1-9])? (B|KiB|MiB|GiB|TiB)", format_bytes(n)), format_bytes(n)


def test_no_other_python_size_formatter():
    """No module but quantities.py spells out the IEC byte units to format a size."""
    pattern = re.compile(r"""\(\s*["']B["']\s*,\s*["']KiB["']""")
    others = [rel for rel, path in _modules() if rel != "odh_spawner/quantities.py" and pattern.search(path.read_text())]
    assert not others, others


def test_the_labextension_formatter_writes_the_same(tmp_path):
    """formatBytes (labextension/src/units.ts, as built into labextension/lib) gives format_bytes's text."""
    import json
    import shutil
    import subprocess

    from odh_spawner.quantities import format_bytes

    built = ROOT / "labextension" / "lib" / "units.js"
    if not shutil.which("node") or not built.is_file():
        pytest.skip("needs node and the built labextension (labextension/build.sh)")
    sizes = SIZES + [1.5, 2.5, 1023.5, 1536.05 * 1024, -2048]
    script = tmp_path / "sizes.mjs"
    script.write_text(f"import {{ formatBytes }} from {json.dumps(built.as_uri())};\n"
                      f"console.log(JSON.stringify({json.dumps(sizes)}.map(formatBytes)));\n")
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out) == [format_bytes(n) for n in sizes]


def test_one_size_formatter_in_the_labextension():
    src = ROOT / "labextension" / "src"
    spelled = [p.name for p in sorted(src.glob("*.ts")) if re.search(r"""['"]KiB['"]""", p.read_text())]
    assert spelled == ["units.ts"], spelled
