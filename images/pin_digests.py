"""Write image digests into the chart's values.yaml, keeping its comments and layout (a line edit, not a YAML
dump): `python images/pin_digests.py VALUES IMAGE=REPO@sha256:... ...`.

IMAGE `hub` sets images.hub.repository and images.hub.digest; `minimal`, `datascience` and `spark` set the
`image:` of every default profile whose image is a `notebook-IMAGE` repository.
"""

from __future__ import annotations

import re
import sys

DIGEST = re.compile(r"^(?P<repo>[a-z0-9]+(?:[._\-/:][a-z0-9]+)*)@(?P<digest>sha256:[a-f0-9]{64})$")
NOTEBOOKS = ("minimal", "datascience", "spark")


def pin(text: str, image: str, ref: str) -> str:
    m = DIGEST.match(ref)
    if not m:
        raise ValueError(f"{ref!r} is not REPO@sha256:<64 hex>")
    if image == "hub":
        out, in_hub, done = [], False, set()
        for line in text.splitlines(keepends=True):
            if re.match(r"^  hub:\s*$", line):
                in_hub = True
            elif in_hub and re.match(r"^  \S", line):
                in_hub = False
            if in_hub and re.match(r"^    repository:", line):
                line, _ = re.subn(r"(repository:\s*).*", lambda x: x.group(1) + m["repo"], line)
                done.add("repository")
            elif in_hub and re.match(r"^    digest:", line):
                line, _ = re.subn(r"(digest:\s*).*", lambda x: x.group(1) + f'"{m["digest"]}"', line)
                done.add("digest")
            out.append(line)
        if done != {"repository", "digest"}:
            raise ValueError("images.hub.repository / images.hub.digest not found")
        return "".join(out)
    if image not in NOTEBOOKS:
        raise ValueError(f"unknown image {image!r}")
    pattern = re.compile(rf"(^\s*image:\s*)\S*/notebook-{image}@sha256:[a-f0-9]{{64}}\s*$", re.M)
    new, n = pattern.subn(lambda x: x.group(1) + ref, text)
    if not n:
        raise ValueError(f"no default profile uses a notebook-{image} image")
    return new


def main(argv: list[str]) -> int:
    path, pairs = argv[0], argv[1:]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for pair in pairs:
        image, _, ref = pair.partition("=")
        text = pin(text, image, ref)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
