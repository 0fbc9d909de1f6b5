import polars as pl

from loop_assets.dedup.text import normalised_text, text_hash


def test_normalisation_collapses_case_space_and_unicode_forms():
    frame = pl.DataFrame({"t": ["  Refund   my\tORDER? ", "refund my order?", "ｒｅｆｕｎｄ my order?", None]})
    out = frame.select(normalised_text(pl.col("t"), 1000).alias("n")).with_columns(text_hash(pl.col("n")).alias("h"))
    assert out["n"].to_list() == ["refund my order?", "refund my order?", "refund my order?", ""]
    assert out["h"].n_unique() == 2
    assert len(out["h"][0]) == 64


def test_normalisation_cuts_to_max_chars():
    frame = pl.DataFrame({"t": ["x" * 50]})
    assert frame.select(normalised_text(pl.col("t"), 10))["t"][0] == "x" * 10
