"""Stage 1, the data: GRID sources (local folders, Zenodo), alignments, splits, skip reasons, `prepare`, the dataset
card and model card, `validate`, `preview`."""
