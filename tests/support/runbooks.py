"""The runbooks (docs/runbooks/<Alert>.md) and the alert rules they belong to, read as data: the alerts of the
rules file, a runbook's `## ` sections, and the ```sh blocks of one section (what the tests run)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm" / "odh-hub" / "files" / "prometheus" / "alerts.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks"
SECTIONS = ("What the user sees", "Impact", "Confirm", "Fix", "Verify", "On Kubernetes")
RUNBOOK_URL = "https://github.com/opendatahub-io/odh-hub/blob/main/docs/runbooks/{alert}.md"


def alert_rules() -> list[dict]:
    rules = yaml.safe_load(RULES.read_text())
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def sections(markdown: str) -> dict[str, str]:
    """Each `## ` heading's text up to the next one (fenced blocks may hold lines starting with '#')."""
    found: dict[str, str] = {}
    current, lines, fenced = None, [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            if current is not None:
                found[current] = "\n".join(lines)
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = "\n".join(lines)
    return found


def sh_blocks(markdown: str, section: str) -> list[str]:
    """The ```sh blocks under `## <section>`, in order."""
    text = sections(markdown).get(section, "")
    return [m.group(1) for m in re.finditer(r"^```sh\n(.*?)^```\s*$", text, re.S | re.M)]


def runbook(alert: str) -> str:
    return (RUNBOOKS / f"{alert}.md").read_text()
