"""Profile documents for tests."""

import copy

DIGEST = "sha256:" + "a" * 64


def profile(slug="p", **overrides) -> dict:
    base = {
        "slug": slug,
        "display_name": f"Profile {slug}",
        "image": f"quay.io/example/{slug}@{DIGEST}",
        "sizes": [
            {"slug": "small", "cpu": {"request": "500m", "limit": 1}, "memory": {"request": "1Gi", "limit": "2Gi"},
             "default": True},
            {"slug": "large", "cpu": {"request": 2, "limit": 4}, "memory": {"request": "4Gi", "limit": "8Gi"}},
        ],
    }
    base.update(copy.deepcopy(overrides))
    return base


def document(*profiles) -> dict:
    return {"profiles": list(profiles) or [profile()]}
