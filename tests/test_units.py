"""lawcat.units: lengths read and written one way for bench, eval, data and the CLI."""
import pytest

from lawcat.errors import LawcatError
from lawcat.units import LengthError, format_count, format_length, parse_length, parse_lengths


def test_parse_lengths():
    assert parse_lengths("1k..8k") == [1024, 2048, 4096, 8192]
    assert parse_lengths("64,128") == [64, 128]
    assert parse_lengths("1k..4k,1m,3000,2k") == [1024, 2048, 3000, 4096, 1 << 20]
    assert parse_lengths("0k,1k,2k", kilo=1000, minimum=0) == [0, 1000, 2000]  # BABILong's buckets
    assert parse_length("1.5k") == 1536 and parse_length(300) == 300


@pytest.mark.parametrize("bad", ["", "abc", "8k..1k", "0", "1.5", "-4k", "4kk"])
def test_bad_lengths_are_one_clear_error(bad):
    with pytest.raises(LengthError, match="length|range") as e:
        parse_lengths(bad)
    assert isinstance(e.value, LawcatError) and isinstance(e.value, ValueError)  # the CLIs print it as one line


def test_format_length():
    assert [format_length(n) for n in (64, 0, 1000, 1024, 1162, 16000, 131072, 1 << 20, 3 << 19)] == \
        ["64", "0k", "1k", "1K", "1.1K", "16k", "128K", "1M", "1536K"]
    assert all(parse_length(format_length(n)) == n for n in (1024, 4096, 1 << 20))


def test_format_count():
    assert format_count(1_235_814_400) == "1.24B" and format_count(134_515_008) == "135M" and format_count(90) == "90"
