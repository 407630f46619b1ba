"""The guides' screenshots are the browser tests' own: each image the docs show is one a browser test takes
(tests/browser/conftest.py `shot` copies it to docs/images on every run), and every image they name exists."""

import os
import re

from tests.conftest import ROOT

DOCS = os.path.join(ROOT, "docs")


def _shots_taken() -> set[str]:
    names = set()
    for f in os.listdir(os.path.join(ROOT, "tests", "browser")):
        if f.endswith(".py"):
            with open(os.path.join(ROOT, "tests", "browser", f)) as fh:
                names.update(re.findall(r'shot\(\w+, "([^"]+)"\)', fh.read()))
    return names


def test_every_doc_image_is_taken_by_a_browser_test():
    images = {f[:-4] for f in os.listdir(os.path.join(DOCS, "images")) if f.endswith(".png")}
    assert images and not images - _shots_taken(), sorted(images - _shots_taken())


def test_every_image_the_docs_name_exists():
    for doc in ("user-guide.md", "admin-guide.md", "benchmarks.md"):
        with open(os.path.join(DOCS, doc)) as f:
            for ref in re.findall(r"\]\((images/[^)]+)\)", f.read()):
                assert os.path.exists(os.path.join(DOCS, ref)), f"{doc} shows missing {ref}"
