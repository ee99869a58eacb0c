"""Reading lips live (`lipagent live`): from a camera or a stream, one line per utterance.

The capture loop runs one tracking Face Mesh across the whole stream (no reset: a camera is one long clip), feeds
each frame's mouth opening to the same `SpanTracker` that finds a file's spoken part, and keeps recent frames in a
ring buffer. When an utterance ends, its frames go to a worker thread that builds the mosaic with the library's
own sampling, crop and mosaic code (the model's recorded settings) and transcribes it, so a slow model never holds
up capture. Utterances that arrive while the worker's queue is full are dropped and counted, frames that could not
be processed in real time are counted, and both are reported at the end.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lipagent.config import MosaicConfig
from lipagent.quiet import quiet_native_stderr, separate_python_stderr
from lipagent.readers.base import Reader, ReaderError
from lipagent.transform.mouth import LIP_LANDMARKS, LipLandmarker, lip_box
from lipagent.transform.speech import DEFAULT_SPEECH, SpanTracker, SpeechConfig, mouth_opening

MAX_UTTERANCE_S = 12.0
"""Frames kept for an utterance in progress; a longer one is read from its last MAX_UTTERANCE_S seconds."""
QUEUE_SIZE = 4
"""Utterances waiting for the model; more than this and the newest is dropped (and counted)."""


@dataclass(frozen=True)
class Frame:
    index: int
    image: np.ndarray
    captured: float
    """perf_counter() when the frame was read (or, for a file read in real time, when it was due)."""


def source_name(camera: int | None, source: str | None) -> str:
    """How messages name what is read: `camera N`, or the file or URL."""
    return f"camera {camera}" if source is None else source


def open_source(camera: int | None, source: str | None) -> tuple[cv2.VideoCapture, float, bool]:
    """The capture, its frame rate and whether it is a live camera; a clear error when it cannot be opened."""
    with quiet_native_stderr():  # OpenCV warns on stderr about a camera index that does not exist
        capture = cv2.VideoCapture(camera) if source is None else cv2.VideoCapture(source)
    what = source_name(camera, source)
    if not capture.isOpened():
        raise ReaderError(
            f"{what} cannot be opened"
            + (" (is a camera attached, and free?)" if source is None else " as a video or stream")
        )
    fps = capture.get(cv2.CAP_PROP_FPS)
    return capture, fps if 1 <= fps <= 240 else 25.0, source is None


def frames_of(capture: cv2.VideoCapture, fps: float, pace: bool, live: bool) -> Iterator[Frame]:
    """Frames in order; a file read with `pace` is delivered at its own frame rate, as a camera would."""
    started = time.perf_counter()
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                return
            due = started + index / fps
            if pace and not live:
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            yield Frame(index, image, max(due, time.perf_counter()) if pace else time.perf_counter())
            index += 1
    finally:
        capture.release()


@dataclass
class Utterance:
    number: int
    start: int
    end: int
    frames: list[np.ndarray]
    ended_at: float
    """When the utterance's last spoken frame was captured (latency is measured from here)."""
    truncated: bool = False


@dataclass
class LiveStats:
    fps: float = 25.0
    frames: int = 0
    face_frames: int = 0
    late_frames: int = 0
    utterances: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> str:
        latency = (
            f"; latency from end of speech to text: median {np.median(self.latencies):.2f} s, "
            f"max {max(self.latencies):.2f} s"
            if self.latencies
            else ""
        )
        return (
            f"{self.frames} frames ({self.frames / self.fps:.1f} s, a face in {self.face_frames}), "
            f"{self.utterances} utterances read, "
            f"{self.dropped} dropped (model busy), {self.late_frames} frames processed late{latency}"
        )


class Segmenter:
    """Frames in, finished utterances (with their frames) out: tracking landmarks, openings, `SpanTracker`."""

    def __init__(self, config: MosaicConfig, fps: float, speech: SpeechConfig = DEFAULT_SPEECH) -> None:
        self.landmarker = LipLandmarker(config, mode="tracking")
        speech = speech.following(config)
        self.tracker = SpanTracker(speech)
        spare = speech.hangover + speech.lookahead + speech.onset_back + speech.onset_lead + 2
        self.buffer: deque[Frame] = deque(maxlen=int(MAX_UTTERANCE_S * fps) + spare)
        self.count = 0
        self.face_frames = 0
        self.last_box: tuple[float, float, float, float] | None = None

    def push(self, frame: Frame) -> list[Utterance]:
        self.buffer.append(frame)
        points = self.landmarker.stream_points(frame.image)
        if points is not None:
            self.face_frames += 1
            height, width = frame.image.shape[:2]
            self.last_box = lip_box(points[list(LIP_LANDMARKS)] / (width, height), width, height)
        span = self.tracker.push(mouth_opening(points))
        return [] if span is None else [self._utterance(span.start, span.end)]

    def finish(self) -> list[Utterance]:
        return [self._utterance(span.start, span.end) for span in self.tracker.finish()]

    def _utterance(self, start: int, end: int) -> Utterance:
        kept = {f.index: f for f in self.buffer}
        first = max(start, min(kept))
        self.count += 1
        return Utterance(
            self.count,
            first,
            end,
            [kept[i].image for i in range(first, end + 1)],
            kept[end].captured,
            truncated=first > start,
        )

    def close(self) -> None:
        self.landmarker.close()


def save_utterance(folder: Path, utterance: Utterance, mosaic: bytes, text: str, fps: float) -> None:
    """Frames (PNG, lossless), the mosaic and what was read, for debugging a live session."""
    target = folder / f"utterance-{utterance.number:04d}"
    target.mkdir(parents=True, exist_ok=True)
    for offset, image in enumerate(utterance.frames):
        cv2.imwrite(str(target / f"frame-{utterance.start + offset:06d}.png"), image)
    (target / "mosaic.jpg").write_bytes(mosaic)
    (target / "utterance.json").write_text(
        json.dumps(
            {
                "start_frame": utterance.start,
                "end_frame": utterance.end,
                "start_s": utterance.start / fps,
                "end_s": (utterance.end + 1) / fps,
                "text": text,
                "truncated": utterance.truncated,
            },
            indent=2,
        )
    )


def timestamp(frame: int, fps: float) -> str:
    seconds = frame / fps
    return f"{int(seconds // 60):02d}:{seconds % 60:05.2f}"


def utterance_line(start: int, end: int, fps: float, text: str) -> str:
    """`mm:ss.ss-mm:ss.ss  text` for the utterance on frames `start` to `end` (inclusive): live's and transcribe's
    line."""
    return f"{timestamp(start, fps)}-{timestamp(end + 1, fps)}  {text}"


class Transcriber(threading.Thread):
    """Reads utterances off a queue, away from the capture loop, and prints one line for each."""

    def __init__(
        self, reader: Reader, fps: float, stats: LiveStats, emit: Callable[[str], None], save: Path | None
    ) -> None:
        super().__init__(daemon=True, name="lipagent-transcriber")
        self.reader, self.fps, self.stats, self.emit, self.save = reader, fps, stats, emit, save
        self.queue: queue.Queue[Utterance | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self.error: BaseException | None = None
        self.last: tuple[bytes, str] | None = None

    def offer(self, utterance: Utterance) -> None:
        try:
            self.queue.put_nowait(utterance)
        except queue.Full:
            self.stats.dropped += 1
            print(
                f"utterance at {timestamp(utterance.start, self.fps)} dropped: the model is still busy", file=sys.stderr
            )

    def run(self) -> None:
        while (utterance := self.queue.get()) is not None:
            try:
                self._read(utterance)
            except BaseException as error:  # surfaced by the capture loop, which ends the session cleanly
                self.error = error
                return

    def _read(self, utterance: Utterance) -> None:
        from lipagent.transform.pipeline import ClipRejected, prepare_frames

        try:
            clip = prepare_frames(utterance.frames, (0, len(utterance.frames) - 1), self.reader.config)
            text = self.reader.transcribe_mosaic(clip.mosaic.jpeg)
        except ClipRejected as rejected:
            text = f"(not read: {rejected.detail})"
            clip = None
        self.stats.latencies.append(time.perf_counter() - utterance.ended_at)
        self.stats.utterances += 1
        self.emit(utterance_line(utterance.start, utterance.end, self.fps, text))
        if clip is not None:
            self.last = (clip.mosaic.jpeg, text)
            if self.save is not None:
                try:
                    save_utterance(self.save, utterance, clip.mosaic.jpeg, text, self.fps)
                except OSError as error:
                    raise ReaderError(
                        f"--save {self.save}: could not save utterance {utterance.number}: {error}"
                    ) from None

    def stop(self, discard: bool = False) -> None:
        """End the thread after the queued utterances (or at once, dropping them, with `discard`)."""
        if discard:
            while not self.queue.empty():
                self.queue.get_nowait()
        if self.is_alive():
            self.queue.put(None)
        self.join()


def show(frame: Frame, box: tuple[float, float, float, float] | None, last: tuple[bytes, str] | None) -> bool:
    """Draw the camera image, the mouth box and the last mosaic and text; False once the user presses q/Esc."""
    image = frame.image.copy()
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), (0, 255, 0), 1)
    if last is not None:
        mosaic = cv2.imdecode(np.frombuffer(last[0], np.uint8), cv2.IMREAD_COLOR)
        cv2.imshow("lipagent: last mosaic", mosaic)
        cv2.putText(image, last[1], (8, image.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    cv2.imshow("lipagent live", image)
    return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)


def run_live(
    reader: Reader,
    *,
    camera: int | None = 0,
    source: str | None = None,
    pace: bool = True,
    display: bool = False,
    save: Path | None = None,
    emit: Callable[[str], None] = print,
    speech: SpeechConfig = DEFAULT_SPEECH,
    opened: tuple[cv2.VideoCapture, float, bool] | None = None,
    stats: LiveStats | None = None,
) -> LiveStats:
    """Read a camera (or a file/URL with `source`) until it ends or Ctrl-C; one `emit` line per utterance.

    `opened`: `open_source`'s result, for callers that open the source before loading a model; `stats`: filled in
    as the session runs, so a caller can still report it when the session ends with an error or Ctrl-C."""
    if (
        display
        and sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        raise ReaderError(
            "--show needs a display (DISPLAY is not set); drop --show, or use --save to keep what was read"
        )
    separate_python_stderr()  # the capture loop and the reader both silence native chatter, overlapping
    capture, fps, live = opened or open_source(camera, source)
    stats = stats or LiveStats()
    stats.fps = fps
    segmenter = Segmenter(reader.config, fps, speech)
    worker = Transcriber(reader, fps, stats, emit, save)
    worker.start()
    period = 1.0 / fps
    interrupted = False
    try:
        for frame in frames_of(capture, fps, pace, live):
            stats.frames += 1
            for utterance in segmenter.push(frame):
                worker.offer(utterance)
            if pace and time.perf_counter() - frame.captured > period:
                stats.late_frames += 1
            if worker.error is not None:
                raise worker.error
            if display and not show(frame, segmenter.last_box, worker.last):
                break
        for utterance in segmenter.finish():
            worker.offer(utterance)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        stats.face_frames = segmenter.face_frames
        worker.stop(discard=interrupted)
        segmenter.close()
        if display:
            cv2.destroyAllWindows()
    if worker.error is not None:
        raise worker.error
    what = source_name(camera, source)
    if stats.frames == 0:
        raise ReaderError(f"{what} gave no frames")
    if stats.face_frames == 0:
        raise ReaderError(f"no face seen in {stats.frames} frames of {what}")
    return stats
