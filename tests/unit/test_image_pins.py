"""images/pin_digests.py: build.sh writes pushed digests into the chart's values.yaml, keeping its comments."""

import importlib.util

import pytest
import yaml

from tests.support.helm import CHART, ROOT

spec = importlib.util.spec_from_file_location("pin_digests", ROOT / "images" / "pin_digests.py")
pin_digests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pin_digests)
VALUES = (CHART / "values.yaml").read_text()
D1, D2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def test_pins_hub_and_notebook_digests_and_keeps_comments():
    text = pin_digests.pin(VALUES, "hub", f"registry.example.org/odh/hub@{D1}")
    text = pin_digests.pin(text, "spark", f"registry.example.org/odh/notebook-spark@{D2}")
    values = yaml.safe_load(text)
    assert values["images"]["hub"] == {"repository": "registry.example.org/odh/hub", "tag": "0.1.0", "digest": D1}
    spark = next(p for p in values["profiles"] if p["slug"] == "spark")
    assert spark["image"] == f"registry.example.org/odh/notebook-spark@{D2}"
    others = [p["image"] for p in values["profiles"] if p["slug"] != "spark"]
    assert others == [p["image"] for p in yaml.safe_load(VALUES)["profiles"] if p["slug"] != "spark"]
    # only those lines changed: every comment (the values' documentation) is still there
    changed = [(a, b) for a, b in zip(VALUES.splitlines(), text.splitlines()) if a != b]
    assert len(changed) == 3 and len(VALUES.splitlines()) == len(text.splitlines())


@pytest.mark.parametrize("image, ref, message", [
    ("hub", "registry.example.org/odh/hub:latest", "is not REPO@sha256"),
    ("gpu", f"registry.example.org/odh/notebook-gpu@{D1}", "unknown image 'gpu'"),
])
def test_refuses_what_it_cannot_pin(image, ref, message):
    with pytest.raises(ValueError, match=message):
        pin_digests.pin(VALUES, image, ref)
