"""Every Python block of the README and user guide is marked with the profile it is written for, names a demo
profile, and compiles (tests/docs runs them; tests/support/docblocks.py says how blocks are marked)."""

import os

import pytest
import yaml

from tests.support import docblocks

BLOCKS = docblocks.all_blocks()
DEMO = yaml.safe_load(open(os.path.join(docblocks.ROOT, "config", "demo", "profiles.yaml")))["profiles"]


def test_the_user_guide_has_blocks_and_every_one_is_marked():
    assert sum(b.doc == "docs/user-guide.md" for b in BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block_names_a_demo_profile_and_compiles(block):
    profile = next((p for p in DEMO if p["slug"] == block.profile), None)
    assert profile, f"{block.where}: no demo profile {block.profile!r}"
    if block.spark:
        assert block.spark <= profile["spark"]["workers"]["max"], block.where
    for part in (block.setup, block.code, block.check):
        compile(part, block.where, "exec")


def test_an_unmarked_block_is_refused_with_its_line():
    with pytest.raises(docblocks.DocBlockError, match=r"guide.md:3: .*doc-test"):
        docblocks.parse("# t\n\n```python\nprint(1)\n```\n", "guide.md")


def test_marker_sections_and_arguments_are_parsed():
    text = ("<!-- doc-test profile=datascience spark=2\nsetup:\nx = 1\ncheck:\nassert y == 2\n-->\n"
            "```python\ny = x + 1\n```\n")
    (b,) = docblocks.parse(text, "g.md")
    assert (b.profile, b.spark, b.setup, b.code, b.check, b.line) == ("datascience", 2, "x = 1", "y = x + 1",
                                                                       "assert y == 2", 7)
    with pytest.raises(docblocks.DocBlockError, match="profile=<slug>"):
        docblocks.parse("<!-- doc-test spark=1 -->\n```python\npass\n```\n", "g.md")
    with pytest.raises(docblocks.DocBlockError, match="outside 'setup:'"):
        docblocks.parse("<!-- doc-test profile=minimal\nstray\n-->\n```python\npass\n```\n", "g.md")
