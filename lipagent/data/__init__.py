"""The data stage: GRID sources (local folders, Zenodo), alignments, splits, the span recipe, the `datasets` builder,
`prepare`, the dataset card, `validate`, `preview`."""
