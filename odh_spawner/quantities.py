"""Kubernetes resource quantities (cpu and memory), parsed and formatted, and sizes written for people. Pure
(the notebook side ships this module too)."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def parse_memory(value) -> int:
    """'2Gi' / '512M' / 1073741824 -> bytes. Raises ValueError with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"Memory must be a quantity like '2Gi', not {value!r}.")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"Memory must be positive, got {value}.")
        return value
    if not isinstance(value, str):
        raise ValueError(f"Memory must be a quantity like '2Gi', not {value!r}.")
    m = _QUANTITY.match(value.strip())
    if not m or m.group(2) == "m":
        raise ValueError(f"Invalid memory quantity {value!r} (examples: '512Mi', '2Gi', '1G').")
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    factor = _BINARY.get(suffix) or _DECIMAL[suffix]
    result = int(number * factor)
    if result <= 0:
        raise ValueError(f"Memory must be positive, got {value!r}.")
    return result


def parse_cpu(value) -> float:
    """'500m' / 0.5 / 2 / '2' -> cores. Raises ValueError with a readable message."""
    if isinstance(value, bool):
        raise ValueError(f"CPU must be a number of cores or like '500m', not {value!r}.")
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        m = _QUANTITY.match(value.strip())
        if not m or m.group(2) not in (None, "m"):
            raise ValueError(f"Invalid CPU quantity {value!r} (examples: '500m', '2', 0.5).")
        try:
            result = float(Decimal(m.group(1)) / (1000 if m.group(2) == "m" else 1))
        except InvalidOperation as e:  # pragma: no cover - regex guards this
            raise ValueError(f"Invalid CPU quantity {value!r}.") from e
    else:
        raise ValueError(f"CPU must be a number of cores or like '500m', not {value!r}.")
    if not result > 0 or result != result or result == float("inf"):
        raise ValueError(f"CPU must be positive, got {value!r}.")
    return result


def format_memory(n: int) -> str:
    """bytes -> the shortest exact binary quantity ('2Gi', '1536Mi', '1000')."""
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        if n % _BINARY[suffix] == 0:
            return f"{n // _BINARY[suffix]}{suffix}"
    return str(n)


def format_cpu(cores: float) -> str:
    """cores -> '2' or '500m'."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float) -> str:
    """bytes -> the one way sizes are written for people, in messages and in the UI: IEC binary units with a
    space, at most one decimal, no trailing '.0' ('512 B', '2 KiB', '1.5 GiB'; rounding carries into the next
    unit: 1048575 -> '1 MiB'). The labextension's formatBytes (labextension/src/units.ts) writes the same.
    Kubernetes quantities ('2Gi', format_memory) are for Kubernetes fields only."""
    sign, value = ("-" if n < 0 else ""), abs(n)
    for unit in _BYTE_UNITS[:-1]:
        rounded = _half_up(value, 0 if unit == "B" else 1)
        if rounded < 1024:
            text = str(int(rounded)) if unit == "B" else f"{rounded:.1f}".removesuffix(".0")
            return f"{sign}{text} {unit}"
        value /= 1024
    return f"{sign}{_half_up(value, 1):.1f}".removesuffix(".0") + " TiB"


def _half_up(x: float, digits: int) -> float:
    """Round halves up, as JavaScript's Math.round does (Python's round() rounds halves to even)."""
    return math.floor(x * 10**digits + 0.5) / 10**digits
    