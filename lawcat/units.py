"""How lengths, counts and sizes are read and written, once for the whole package (bench, eval, data, the CLI).

Lengths are token counts: "4k" is 4,096 tokens (`kilo=1000` for BABILong, whose "1k" means 1,000), "1m" 2**20,
"1k..32k" every doubling from 1K to 32K. Labels go the other way: 1024 -> "1K", 1000 -> "1k" (BABILong's and
LongLoRA's buckets keep BABILong's small k, so 8000 and 8192 stay apart in one table), 2**20 -> "1M".
"""
from __future__ import annotations

import re

from .errors import LawcatError

__all__ = ["GiB", "MiB", "LengthError", "format_count", "format_length", "parse_length", "parse_lengths"]

GiB, MiB = 1 << 30, 1 << 20


class LengthError(LawcatError, ValueError):
    """A length the user wrote that is not a token count."""


def parse_length(text: str | int, kilo: int = 1024, minimum: int = 1) -> int:
    """One token count: 4096, "4k", "1.5k", "1m" (k = `kilo` tokens, m = 2**20)."""
    if isinstance(text, int) and not isinstance(text, bool):
        n = float(text)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(text))
        if not m:
            raise LengthError(f"cannot read the length {str(text)!r}: write tokens like 4096, 4k or 1m")
        n = float(m.group(1)) * {"": 1, "k": kilo, "m": 1 << 20}[m.group(2).lower()]
    if n != int(n) or n < minimum:
        raise LengthError(f"the length {str(text)!r} is not a whole number of tokens >= {minimum}")
    return int(n)


def parse_lengths(text: str, kilo: int = 1024, minimum: int = 1) -> list[int]:
    """'1k,2k,4k', '1k..128k' (doubling) or a mix ('1k..8k,12k') -> token counts, ascending, each once."""
    out: list[int] = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        if ".." in part:
            lo, hi = (parse_length(x, kilo, max(minimum, 1)) for x in part.split("..", 1))
            if hi < lo:
                raise LengthError(f"the range {part.strip()!r} ends below its start")
            while lo <= hi:
                out.append(lo)
                lo *= 2
        else:
            out.append(parse_length(part, kilo, minimum))
    if not out:
        raise LengthError(f"no lengths in {text!r}: write e.g. 1k,4k or 1k..32k")
    return sorted(set(out))


def format_length(n: int) -> str:
    """A length as a column label: 1024 -> "1K", 1000 -> "1k", 0 -> "0k", 1162 -> "1.1K", 2**20 -> "1M"."""
    n = int(n)
    if n == 0:
        return "0k"
    if n % (1 << 20) == 0:
        return f"{n >> 20}M"
    if n % 1024 == 0:
        return f"{n >> 10}K"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    if n >= 1024:
        return f"{n / 1024:.1f}K"
    return str(n)


def format_count(n) -> str:
    """1235814400 -> '1.24B', 134515008 -> '135M', 90432 -> '90.4K'."""
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)
