import pytest

from odh_spawner.quantities import format_cpu, format_memory, parse_cpu, parse_memory


@pytest.mark.parametrize("text,expected", [
    ("1Gi", 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9), ("1.5Gi", 3 * 2**29), (1024, 1024), ("100", 100),
])
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["", "1Gb", "500m", "-1Gi", "Gi", 0, -5, True, None, 1.5, "1e3"])
def test_parse_memory_rejects(bad):
    with pytest.raises(ValueError):
        parse_memory(bad)


@pytest.mark.parametrize("text,expected", [("500m", 0.5), ("2", 2.0), (0.25, 0.25), (4, 4.0), ("1.5", 1.5)])
def test_parse_cpu(text, expected):
    assert parse_cpu(text) == expected


@pytest.mark.parametrize("bad", ["", "1Gi", "0", 0, -1, True, None, "abc", float("nan"), float("inf")])
def test_parse_cpu_rejects(bad):
    with pytest.raises(ValueError):
        parse_cpu(bad)


def test_format_roundtrip():
    assert format_memory(2**31) == "2Gi"
    assert format_memory(1536 * 2**20) == "1536Mi"
    assert format_memory(1000) == "1000"
    assert format_cpu(0.5) == "500m"
    assert format_cpu(2.0) == "2"
