"""The image build files hang together (no Docker engine here to build them): every flavour build.sh builds
has its lock where the shared notebook Dockerfile copies it from, and every file a Dockerfile copies or runs
exists in the build context (the repository root)."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, "images")

pytestmark = pytest.mark.unit


def build_sh_images() -> list[str]:
    text = open(os.path.join(IMAGES, "build.sh")).read()
    return re.search(r"IMAGES=\$\{IMAGES:-([^}]*)\}", text).group(1).split()


def copied_sources(dockerfile: str, flavor: str) -> list[str]:
    """The build-context sources of every COPY (not --from) with ${FLAVOR} expanded, and the scripts RUN names."""
    text = open(dockerfile).read().replace("${FLAVOR}", flavor).replace("$FLAVOR", flavor)
    found = []
    for line in text.splitlines():
        m = re.match(r"COPY\s+(?!--from)(\S+)\s+\S+", line)
        if m and m.group(1) != ".":
            found.append(m.group(1))
        found += re.findall(r"\b(images/[\w./-]+\.sh)\b", line) if line.startswith("RUN") else []
    return found


@pytest.mark.parametrize("image", build_sh_images())
def test_every_image_build_sh_builds_has_its_dockerfile_and_files(image):
    dockerfile = os.path.join(IMAGES, "hub" if image == "hub" else "notebook", "Dockerfile")
    sources = copied_sources(dockerfile, image)
    assert f"images/{image}/requirements.lock" in sources
    for src in sources:
        assert os.path.exists(os.path.join(ROOT, src)), (image, src)
        if src.endswith(".sh") and not src.startswith("images/notebook/spark"):
            assert os.access(os.path.join(ROOT, src), os.X_OK), src


def test_notebook_flavours_share_one_dockerfile_and_only_spark_adds_java_and_jars():
    flavours = [d for d in os.listdir(IMAGES) if os.path.exists(os.path.join(IMAGES, d, "requirements.lock"))]
    assert sorted(flavours) == ["datascience", "hub", "minimal", "spark"]
    assert not [d for d in flavours if d != "hub" and os.path.exists(os.path.join(IMAGES, d, "Dockerfile"))]
    text = open(os.path.join(IMAGES, "notebook", "Dockerfile")).read()
    # only spark: the s3a build stage fetches the jars (others get an empty /s3a), Java, the jars installed
    assert text.count('if [ "$FLAVOR" = spark ]') == 3
    assert 'RUN mkdir /s3a && if [ "$FLAVOR" = spark ]' in text
