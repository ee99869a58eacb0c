"""Write real_clip_references.json: what the transform makes of a few real s1 clips, stored so that tests can
check crops to the pixel and spans to the frame.

Run it only after a deliberate change to landmarks, cropping or span detection that bench/bench_accuracy.py has
measured, then review the diff: `python tests/data/record_references.py ../shared/grid`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from dataclasses import astuple, replace
from pathlib import Path

from lipagent.config import DEFAULT_CONFIG
from lipagent.data.align import parse_alignment
from lipagent.transform.mouth import LIP_LANDMARKS, process_landmarker
from lipagent.transform.pipeline import crop_boxes, decode_all, find_speech
from lipagent.transform.sampling import sample_indices
from lipagent.transform.speech import detect_span, mouth_opening

CLIPS = ("bbaf2n", "lrae3s", "sgib8n", "bbiz1s", "sbbbzp")
"""A typical clip, two of 74 frames (one speaking to frame 66), one with damaged macroblocks, one whose speech
starts late."""
PORTRAIT = (80, 280)
"""Columns kept for a portrait view (200x288, narrower than tall, as a phone films) of the same frames: a crop
computed with width and height mixed up lands elsewhere there."""
OUT = Path(__file__).with_name("real_clip_references.json")
FACE_MESH_STATIC = Path(__file__).with_name("face_mesh_static_lips.json")
"""The legacy Face Mesh solution's lip landmarks on one frame (static mode): what a Face Mesh bundle for the Tasks
API must reproduce. Recorded only where mediapipe still has the legacy solution (0.10.21)."""


FACE_LANDMARKER = replace(DEFAULT_CONFIG, landmarker="face_landmarker")
"""The Tasks API's landmarker (model bundle from LIPAGENT_FACE_LANDMARKER or its cached download)."""
FACE_ALIGNED = replace(DEFAULT_CONFIG, crop="face_aligned")
"""The crop turned with the eye line and sized by the eyes (centre x, y, width, height, angle per frame)."""


def _boxes(frames, config=DEFAULT_CONFIG) -> list[list[float]]:
    boxes, _ = crop_boxes(frames, process_landmarker(config), config)
    return [[round(v, 3) for v in (box if isinstance(box, tuple) else astuple(box))] for box in boxes]


def record(grid_dir: Path) -> dict:
    references = {}
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(grid_dir / "s1.zip") as archive:
            archive.extractall(tmp, [f"s1/{clip}.mpg" for clip in CLIPS])
        with zipfile.ZipFile(grid_dir / "alignments.zip") as archive:
            aligns = {clip: archive.read(f"alignments/s1/{clip}.align").decode() for clip in CLIPS}
        for clip in CLIPS:
            frames = decode_all(Path(tmp) / "s1" / f"{clip}.mpg")
            alignment = parse_alignment(aligns[clip])
            aligned = (alignment.speech_start_frame, alignment.speech_end_frame)
            points = process_landmarker(DEFAULT_CONFIG, mode="tracking").clip_points(frames)
            openings = [round(mouth_opening(p), 6) for p in points]
            detected = find_speech(frames)
            if detect_span(openings) != detected:
                raise SystemExit(f"{clip}: rounding the openings moved the span; keep more decimals")
            indices = sample_indices(*aligned, DEFAULT_CONFIG.num_frames, len(frames))
            sampled = [frames[i] for i in indices]
            left, right = PORTRAIT
            references[clip] = {
                "frames": len(frames),
                "aligned": list(aligned),
                "detected": list(detected),
                "openings": openings,
                "sampled": indices,
                "boxes": _boxes(sampled),
                "portrait_boxes": _boxes([frame[:, left:right] for frame in sampled]),
                "face_landmarker_boxes": _boxes(sampled, FACE_LANDMARKER),
                "face_aligned_boxes": _boxes(sampled, FACE_ALIGNED),
            }
    return {"mosaic": DEFAULT_CONFIG.to_dict(), "portrait_columns": list(PORTRAIT), "clips": references}


def record_face_mesh_static(grid_dir: Path) -> dict:
    import cv2
    import mediapipe as mp

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(grid_dir / "s1.zip") as archive:
            archive.extract("s1/bbaf2n.mpg", tmp)
        frame = decode_all(Path(tmp) / "s1" / "bbaf2n.mpg")[30]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False) as mesh:
        found = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).multi_face_landmarks[0].landmark
    height, width = frame.shape[:2]
    lips = [[round(found[i].x * width, 4), round(found[i].y * height, 4)] for i in LIP_LANDMARKS]
    return {"clip": "s1/bbaf2n", "frame": 30, "mediapipe": mp.__version__, "lips": lips}


if __name__ == "__main__":
    OUT.write_text(json.dumps(record(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {OUT}")
    if hasattr(__import__("mediapipe"), "solutions"):
        FACE_MESH_STATIC.write_text(json.dumps(record_face_mesh_static(Path(sys.argv[1])), indent=1) + "\n")
        print(f"wrote {FACE_MESH_STATIC}")
