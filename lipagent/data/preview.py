"""`lipagent preview`: a contact sheet of mosaics with their transcriptions, to eyeball a dataset."""

from __future__ import annotations

from pathlib import Path

import datasets
from PIL import Image, ImageDraw, ImageFont

CAPTION_HEIGHT = 22
MARGIN = 8


def contact_sheet(rows: list[dict], columns: int = 3) -> Image.Image:
    """Mosaics in a grid, each captioned `split video_id: text`."""
    if not rows:
        raise ValueError("nothing to preview: the dataset has no rows")
    width, height = rows[0]["image"].size
    cell_w, cell_h = width + MARGIN, height + CAPTION_HEIGHT + MARGIN
    lines = (len(rows) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w + MARGIN, lines * cell_h + MARGIN), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for i, row in enumerate(rows):
        x, y = MARGIN + (i % columns) * cell_w, MARGIN + (i // columns) * cell_h
        sheet.paste(row["image"].convert("RGB"), (x, y))
        draw.text((x, y + height + 3), f"{row['split']} {row['video_id']}: {row['text']}", fill="black", font=font)
    return sheet


def preview(folder: str | Path, out: str | Path, per_split: int = 4, columns: int = 3) -> Path:
    """Write a contact sheet of the first `per_split` mosaics of every split to `out` (PNG)."""
    dataset = datasets.load_dataset(str(folder))
    rows = [
        {**dataset[split][i], "split": split} for split in dataset for i in range(min(per_split, len(dataset[split])))
    ]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, columns).save(out)
    return out
