"""The `datasets` builder over the GRID zips: one row per (video, alignment) pair, split by video id.

    from builders.grid_mosaics import GridMosaics

    builder = GridMosaics(speakers=["s1"], grid_dir="/data/grid")   # or no grid_dir: fetched from Zenodo
    builder.download_and_prepare()
    sources = builder.as_dataset()

datasets 4 and later no longer run loading scripts, so the builder is used as a class; its code lives in
lipagent/data/builder.py, beside the rest of the data stage, and `lipagent prepare` runs the mosaic transform over
its rows.
"""

from lipagent.data.builder import SOURCE_FEATURES, GridMosaics, GridMosaicsConfig, source_row

__all__ = ["SOURCE_FEATURES", "GridMosaics", "GridMosaicsConfig", "source_row"]
