"""Time the video -> mosaic transform per clip on real GRID clips, against the floor, in one run.

- floor: grab every frame, retrieve the sampled ones, landmarks on the ones the default landmarks (MediaPipe's
  FaceLandmarker on the default landmarker's bundle, in the default mode, one landmarker for all clips: no crop, no
  mosaic, no JPEG, the least any such pipeline can do);
- lipagent: `video_to_mosaic` with the default settings, everything included (a landmarker per clip, crops, mosaic,
  JPEG), and the same with the landmarks in the other mode (static, each frame detected afresh), to show what the
  choice costs;
- lipagent, auto speech: what inference does without an alignment (`prepare_video(path)`): decode every frame,
  track the landmarks on every frame to find the spoken part, then the mosaic;
- seed plan: every frame to PNG, landmarks on every frame, crops to PNG (the first plan's way), on a few clips.
Floor and lipagent alternate clip by clip, so machine load falls on both alike. Then the whole
`Dataset.map` stage is timed at each --num-proc to show throughput scaling.

    python bench/bench_pipeline.py [--grid-dir ../shared/grid] [--clips 60] [--num-proc 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import datasets
import mediapipe as mp
import numpy as np

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.data.align import parse_alignment
from lipagent.data.builder import SOURCE_FEATURES
from lipagent.data.prepare import map_in_chunks
from lipagent.data.recipe import DEFAULT_SPEECH_SPAN
from lipagent.quiet import quiet_native_stderr
from lipagent.transform.face_model import landmarker_bundle
from lipagent.transform.mouth import LipLandmarker
from lipagent.transform.pipeline import ClipRejected, landmarked_positions, prepare_video, video_to_mosaic
from lipagent.transform.sampling import sample_indices
from lipagent.transform.speech import NoSpeechFound
from lipagent.transform.video import read_frames

REPO = Path(__file__).resolve().parents[1]


def unpack(grid_dir: Path, clips: int, root: Path) -> list[tuple[Path, tuple[int, int]]]:
    """The first `clips` s1 videos and their spoken frames."""
    with zipfile.ZipFile(grid_dir / "s1.zip") as videos, zipfile.ZipFile(grid_dir / "alignments.zip") as aligns:
        names = sorted(n for n in videos.namelist() if n.endswith(".mpg"))[:clips]
        out = []
        for name in names:
            videos.extract(name, root)
            video_id = Path(name).stem
            alignment = parse_alignment(aligns.read(f"alignments/s1/{video_id}.align").decode())
            out.append((root / name, (alignment.speech_start_frame, alignment.speech_end_frame)))
    return out


class TasksLandmarks:
    """MediaPipe's FaceLandmarker on the default landmarker's bundle, called directly: `process` is one landmark
    pass and nothing else."""

    def __init__(self, static: bool) -> None:
        bundle = landmarker_bundle(DEFAULT_CONFIG.landmarker)
        vision = mp.tasks.vision
        mode = vision.RunningMode.IMAGE if static else vision.RunningMode.VIDEO
        options = vision.FaceLandmarkerOptions(
            base_options=mp.tasks.BaseOptions(model_asset_path=str(bundle)), running_mode=mode, num_faces=1
        )
        self._task, self._static, self._time = vision.FaceLandmarker.create_from_options(options), static, 0

    def process(self, rgb: np.ndarray) -> object:
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._static:
            return self._task.detect(image)
        self._time += 40
        return self._task.detect_for_video(image, self._time)

    def close(self) -> None:
        self._task.close()


def floor_once(mesh, path: Path, speech: tuple[int, int]) -> None:
    frames, _ = read_frames(path, sample_indices(*speech, DEFAULT_CONFIG.num_frames))
    sampled = list(frames.values())
    for position in landmarked_positions(len(sampled)):
        mesh.process(cv2.cvtColor(sampled[position], cv2.COLOR_BGR2RGB))


def seed_plan_once(mesh, path: Path, work: Path) -> None:
    """Every frame to PNG, landmarks on every frame, each crop to PNG."""
    capture = cv2.VideoCapture(str(path))
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.imwrite(str(work / f"frame{index:03d}.png"), frame)
        index += 1
    capture.release()
    for i in range(index):
        frame = cv2.imread(str(work / f"frame{i:03d}.png"))
        result = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if result.face_landmarks:
            cv2.imwrite(str(work / f"crop{i:03d}.png"), frame[180:240, 140:220])


def mosaic_setting(text: str) -> MosaicConfig:
    """`setting=value` tokens, comma-separated, over the default settings (`crop=face_aligned,crop_smoothing=1`)."""
    pairs = [token.split("=", 1) for token in text.split(",") if token]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"{text!r} is not setting=value tokens")
    return DEFAULT_CONFIG.with_overrides(dict(pairs))


def per_clip(clips, seeds: int, work: Path, also: dict[str, MosaicConfig] | None = None) -> dict[str, list[float]]:
    """Seconds per clip for each way (and `video_to_mosaic` under each of `also`'s settings); the first clip is run
    once untimed to warm caches."""
    also = also or {}
    landmarker = LipLandmarker(DEFAULT_CONFIG)
    extra = {name: (config, LipLandmarker(config)) for name, config in also.items()}
    other_mode = "static" if DEFAULT_CONFIG.landmarks == "tracking" else "tracking"
    tracking_config = MosaicConfig(**{**DEFAULT_CONFIG.to_dict(), "landmarks": other_mode})
    tracking = LipLandmarker(tracking_config)
    with quiet_native_stderr():
        floor_mesh = TasksLandmarks(static=DEFAULT_CONFIG.landmarks == "static")
        static = TasksLandmarks(static=True)
    video_to_mosaic(*clips[0], landmarker=landmarker)
    video_to_mosaic(*clips[0], config=tracking_config, landmarker=tracking)
    for config, made in extra.values():
        video_to_mosaic(*clips[0], config=config, landmarker=made)
    times: dict[str, list[float]] = {
        "floor": [],
        "lipagent": [],
        f"lipagent, {other_mode}": [],
        **{f"lipagent, {name}": [] for name in extra},
        "lipagent, auto speech": [],
        "seed plan": [],
    }
    for i, (path, speech) in enumerate(clips):
        start = time.perf_counter()
        with quiet_native_stderr():
            floor_once(floor_mesh, path, speech)
        times["floor"].append(time.perf_counter() - start)
        start = time.perf_counter()
        video_to_mosaic(path, speech, landmarker=landmarker)
        times["lipagent"].append(time.perf_counter() - start)
        start = time.perf_counter()
        video_to_mosaic(path, speech, tracking_config, landmarker=tracking)
        times[f"lipagent, {other_mode}"].append(time.perf_counter() - start)
        for name, (config, made) in extra.items():
            start = time.perf_counter()
            video_to_mosaic(path, speech, config, landmarker=made)
            times[f"lipagent, {name}"].append(time.perf_counter() - start)
        start = time.perf_counter()
        try:
            prepare_video(path)
        except (ClipRejected, NoSpeechFound):  # the same work, ending in "nothing to read" instead of a mosaic
            pass
        times["lipagent, auto speech"].append(time.perf_counter() - start)
        if i < seeds:
            start = time.perf_counter()
            with quiet_native_stderr():
                seed_plan_once(static, path, work)
            times["seed plan"].append(time.perf_counter() - start)
    for closable in (floor_mesh, static, landmarker, tracking, *(made for _, made in extra.values())):
        closable.close()
    return times


def throughput(clips, num_proc: int) -> float:
    rows = [
        {
            "video_id": p.stem,
            "speaker": "s1",
            "video_path": str(p),
            "text": "",
            "speech_start": s,
            "speech_end": e,
            "skip_reason": None,
            "skip_detail": None,
        }
        for p, (s, e) in clips
    ]
    sources = datasets.Dataset.from_list(rows, features=SOURCE_FEATURES)
    start = time.perf_counter()
    mapped = map_in_chunks(
        sources, DEFAULT_CONFIG, DEFAULT_SPEECH_SPAN, num_proc, chunk_size=len(rows), desc=f"num_proc={num_proc}"
    )
    seconds = time.perf_counter() - start
    assert sum(r is None for r in mapped["skip_reason"]) == len(rows)
    return len(rows) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid-dir", type=Path, default=REPO.parent / "shared" / "grid")
    parser.add_argument("--clips", type=int, default=60, help="real s1 clips to time")
    parser.add_argument("--seed-clips", type=int, default=5, help="clips timed the seed plan's way (slow)")
    parser.add_argument("--num-proc", type=int, nargs="+", default=[1, 2], help="map worker counts to compare")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="SETTINGS",
        help="also time video_to_mosaic under these mosaic settings, alternating with the default "
        "(`crop=face_aligned`; repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    try:
        also = {text: mosaic_setting(text) for text in args.also}
    except ValueError as error:
        parser.error(f"--also: {error}")
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        clips = unpack(args.grid_dir, args.clips, Path(tmp))
        work = Path(tmp) / "seed"
        work.mkdir()
        # Throughput first: like `lipagent prepare`, this process has made no Face Mesh yet, so map forks.
        rates = {n: throughput(clips, n) for n in args.num_proc}
        times = per_clip(clips, args.seed_clips, work, also)
    floor = statistics.median(times["floor"])
    also_names = {f"lipagent, {name}" for name in also}
    print(f"per clip, one core, {len(clips)} real GRID s1 clips (median / mean ms):")
    figures = {}
    for name, values in times.items():
        if values:
            med, mean = statistics.median(values) * 1000, statistics.mean(values) * 1000
            figures[name] = {"median_ms": round(med, 1), "mean_ms": round(mean, 1), "clips": len(values)}
            ratio = (
                f"   x{med / (statistics.median(times['lipagent']) * 1000):.2f} of default"
                if name in also_names
                else ""
            )
            print(f"  {name:<21} {med:7.1f} / {mean:7.1f}   x{med / (floor * 1000):.2f} of floor{ratio}")
    print("Dataset.map throughput (videos/s, including worker start-up):")
    for n, rate in rates.items():
        print(f"  num_proc={n:<2} {rate:6.1f}   x{rate / rates[args.num_proc[0]]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"per_clip": figures, "videos_per_s": rates}, indent=2))


if __name__ == "__main__":
    main()
