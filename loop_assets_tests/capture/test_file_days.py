import gzip
import os
from datetime import UTC, date, datetime, timedelta

from loop_assets.capture.file_days import file_days
from loop_assets.config import IngestConfig
from loop_assets.devtools.sample_traffic import write_traffic

START = date(2026, 11, 16)


def test_small_files_are_read_exactly_through_the_parsers(tmp_path):
    [path] = write_traffic(tmp_path, days=1, per_day=60, seed=3, start=START)
    # a few traces of each file are logged in the first minutes of the next day
    assert file_days(path, IngestConfig()) == {START, START + timedelta(days=1)}


def test_large_files_are_sampled_and_bound_their_days(tmp_path):
    paths = write_traffic(tmp_path / "src", days=3, per_day=400, seed=3, start=START)
    big = tmp_path / "three-days.jsonl"
    big.write_bytes(b"".join(p.read_bytes() if p.suffix != ".gz" else gzip.decompress(p.read_bytes()) for p in paths))
    sampled = file_days(big, IngestConfig(), small_file_bytes=0)
    assert min(sampled) == START and max(sampled) == START + timedelta(days=3)
    zipped = tmp_path / "three-days.jsonl.gz"
    zipped.write_bytes(gzip.compress(big.read_bytes()))
    streamed = file_days(zipped, IngestConfig(), small_file_bytes=0)
    assert min(streamed) == START and max(streamed) == START + timedelta(days=3)


def test_a_large_file_whose_sample_has_no_day_is_read_exactly_and_has_its_modification_day(tmp_path):
    # its lines have no day of their own: the ingest sends them to the file's day, which must be materialised
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"not json\n" * 1000)
    noon = datetime(2026, 11, 18, 12, tzinfo=UTC).timestamp()
    os.utime(junk, (noon, noon))
    assert file_days(junk, IngestConfig(), small_file_bytes=0) == {date(2026, 11, 18)}
