"""`lipagent demo`: the data pipeline end to end on clips rendered offline (no network, no GPU)."""

from __future__ import annotations

import shutil
from pathlib import Path

from lipagent.prepare import PrepareOptions, prepare
from lipagent.preview import preview
from lipagent.synthetic import render_corpus
from lipagent.validate import validate_folder

DEMO_SPEAKERS = ("s1", "s2", "s3")


def run_demo(out: Path, num_proc: int | None = None) -> dict[str, Path]:
    """Render a small corpus, prepare, validate and preview it under `out`; returns the artifacts."""
    out = Path(out)
    sources = out / "grid"
    shutil.rmtree(sources, ignore_errors=True)
    print(f"[1/4] rendering a GRID-like sample corpus from a public-domain face photo -> {sources}")
    render_corpus(sources, speakers=DEMO_SPEAKERS)
    dataset = out / "grid-mosaics"
    print(f"[2/4] lipagent prepare --grid-dir {sources} --speakers {' '.join(DEMO_SPEAKERS)} --out {dataset}")
    summary = prepare(
        PrepareOptions(
            speakers=DEMO_SPEAKERS, out=dataset, grid_dir=sources, cache_dir=out / "cache", num_proc=num_proc, overwrite=True
        )
    )
    print(summary.text())
    print(f"[3/4] lipagent validate {dataset}")
    report = validate_folder(dataset)
    print(report.text())
    if not report.ok:
        raise ValueError(f"the demo dataset did not validate:\n{report.text()}")
    sheet = preview(dataset, out / "sheet.png")
    print(f"[4/4] lipagent preview {dataset} --out {sheet}")
    artifacts = {"sources": sources, "dataset": dataset, "card": dataset / "README.md", "preview": sheet}
    print("\nartifacts:")
    for name, path in artifacts.items():
        print(f"  {name:<8} {path}")
    return artifacts
