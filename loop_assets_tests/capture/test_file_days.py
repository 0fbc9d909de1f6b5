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


def test_a_file_with_no_record_of_a_day_has_no_day_whatever_its_modification_time(tmp_path):
    # its lines have no day of their own: they are quarantined under no day, so no day is run for them
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"not json\n" * 1000)
    noon = datetime(2026, 11, 18, 12, tzinfo=UTC).timestamp()
    os.utime(junk, (noon, noon))
    assert file_days(junk, IngestConfig(), small_file_bytes=0) == set()  # sampled, then read exactly
    assert file_days(junk, IngestConfig()) == set()
    # one dated record among them gives the file its day (the others go with it)
    [path] = write_traffic(tmp_path / "one", days=1, per_day=1, seed=3, start=START)
    first = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    junk.write_bytes(b"not json\n" * 10 + first.splitlines()[0] + b"\n" + b"not json\n" * 10)
    assert file_days(junk, IngestConfig()) == {START}


def test_the_days_of_a_file_are_exactly_the_partition_days_its_ingest_routes_records_to(tmp_path):
    from loop_assets.capture.ingest import ingest_file, record_days
    from loop_assets_tests.capture.test_ingest import messy_folder

    messy_folder(tmp_path)
    paths = [p for p in sorted(tmp_path.rglob("*")) if p.is_file()]
    assert len(paths) == 6
    for path in paths:
        routed = set(ingest_file(path, IngestConfig(), "r").manifest["partition_day"].drop_nulls())
        assert record_days(path, IngestConfig()) == routed, path.name
