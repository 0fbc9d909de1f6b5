"""DEDUP: failing traces to clusters with one representative each (text, embedding, clustering, search)."""
