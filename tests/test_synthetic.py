"""The offline demo corpus must look like GRID to the real pipeline: ids, .align text, MPEG-1 video, a face."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG
from lipagent.data.align import parse_alignment
from lipagent.grammar import GridSentence, parse_sentence
from lipagent.testing.synthetic import (
    clip_frames,
    mouth_openness,
    plan_corpus,
    render_clip,
    render_corpus,
    sentence_timings,
    video_id_for,
)
from lipagent.transform.mouth import LIP_LANDMARKS, LipLandmarker

REAL_ALIGNMENTS = Path(__file__).resolve().parents[1].parent / "shared" / "grid" / "alignments.zip"
SENTENCE = GridSentence("bin", "blue", "at", "f", "two", "now")
SEED = 7
SPEECH = (14, 51)


def _sentence(text: str) -> GridSentence:
    sentence = parse_sentence(text)
    assert sentence is not None
    return sentence


@pytest.mark.parametrize(
    ("text", "video_id"),
    [
        ("bin blue at f two now", "bbaf2n"),
        ("lay red with x five soon", "lrwx5s"),
        ("set white in j zero again", "swijza"),
        ("place green by a nine please", "pgba9p"),
    ],
)
def test_video_id_follows_grid_scheme(text: str, video_id: str) -> None:
    assert video_id_for(_sentence(text)) == video_id


@pytest.mark.skipif(not REAL_ALIGNMENTS.exists(), reason="real GRID samples not beside the project")
def test_video_id_matches_every_real_s1_file_name() -> None:
    with zipfile.ZipFile(REAL_ALIGNMENTS) as archive:
        names = [n for n in archive.namelist() if n.endswith(".align")]
        ids = {Path(n).stem: video_id_for(_sentence(parse_alignment(archive.read(n).decode()).text)) for n in names}
    assert len(ids) > 1000 - 1
    assert all(stem == video_id for stem, video_id in ids.items())


@pytest.mark.parametrize("pause", [False, True])
def test_timings_are_grid_like(pause: bool) -> None:
    words = sentence_timings(SENTENCE, seed=SEED, speech=SPEECH, pause=pause)
    assert [w.word for w in words if w.word not in ("sil", "sp")] == list(SENTENCE)
    assert (words[0].word, words[0].start, words[-1].word, words[-1].end) == ("sil", 0, "sil", 74500)
    assert all(a.end == b.start for a, b in zip(words, words[1:]))
    assert all(w.start % 250 == 0 and w.end - w.start >= 500 for w in words)
    assert ("sp" in [w.word for w in words]) == pause


def test_openness_is_zero_in_silence_and_varies_during_speech() -> None:
    words = sentence_timings(SENTENCE, seed=SEED, speech=SPEECH, pause=True)
    openness = mouth_openness(words, 75, seed=SEED)
    pause = next(w for w in words if w.word == "sp")
    assert not openness[: SPEECH[0]].any() and not openness[SPEECH[1] :].any()
    centers = (np.arange(75) + 0.5) * 1000
    in_pause = (centers >= pause.start) & (centers <= pause.end)
    assert in_pause.any() and not openness[in_pause].any()
    assert 0.5 < openness.max() <= 1.0 and len(np.unique(np.round(openness[openness > 0.3], 2))) > 3


def test_silent_frames_are_still_and_speech_only_moves_the_mouth() -> None:
    openness = np.zeros(6)
    openness[2:4] = (0.5, 1.0)
    frames = list(clip_frames(SEED, openness))
    assert all(np.array_equal(frames[0], frames[i]) for i in (1, 4, 5))
    changed = np.argwhere((frames[3] != frames[0]).any(axis=2))
    assert changed.size and np.ptp(changed[:, 0]) < 100 and np.ptp(changed[:, 1]) < 110


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], str]:
    path = tmp_path_factory.mktemp("clip") / f"{video_id_for(SENTENCE)}.mpg"
    text = render_clip(path, SENTENCE, seed=SEED, speech=SPEECH)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, text


def test_clip_decodes_like_grid(clip: tuple[list[np.ndarray], str]) -> None:
    frames, _ = clip
    assert len(frames) == 75
    assert all(frame.shape == (288, 360, 3) for frame in frames)


def test_clip_alignment_parses_to_the_sentence(clip: tuple[list[np.ndarray], str]) -> None:
    _, text = clip
    assert text.endswith("\r\n") and text.count("\r\n") == text.count("\n")
    alignment = parse_alignment(text)
    assert alignment.text == SENTENCE.text
    assert (alignment.speech_start_frame, alignment.speech_end_frame) == (SPEECH[0], SPEECH[1] - 1)
    assert alignment.words[-1].end == 74500


def test_face_mesh_sees_the_face_and_the_mouth_opening(clip: tuple[list[np.ndarray], str]) -> None:
    frames, text = clip
    open_frame = int(np.argmax(mouth_openness(parse_alignment(text).words, 75, seed=SEED)))
    heights = {}
    landmarker = LipLandmarker(DEFAULT_CONFIG, mode="static")
    try:
        for index in (0, 37, 74, open_frame):
            points = landmarker.points(frames[index])
            assert points is not None, f"no face in frame {index}"
            ys = points[list(LIP_LANDMARKS), 1]
            heights[index] = float(ys.max() - ys.min())
    finally:
        landmarker.close()
    assert SPEECH[0] <= open_frame < SPEECH[1]
    assert heights[open_frame] > heights[0] + 3.0, heights


def test_corpus_has_zenodo_layout_and_the_two_defects(tmp_path: Path) -> None:
    out = render_corpus(tmp_path / "grid", clips_per_speaker=2, seed=3)
    assert sorted(p.name for p in out.iterdir()) == ["alignments.zip", "s1.zip", "s2.zip", "s3.zip"]
    videos: dict[str, set[str]] = {}
    for speaker in ("s1", "s2", "s3"):
        with zipfile.ZipFile(out / f"{speaker}.zip") as archive:
            names = archive.namelist()
            assert all(n.startswith(f"{speaker}/") and n.endswith(".mpg") for n in names)
            videos[speaker] = {Path(n).stem for n in names}
            assert archive.read(names[0])[:4] == b"\x00\x00\x01\xba"
    with zipfile.ZipFile(out / "alignments.zip") as archive:
        aligned = {speaker: set() for speaker in videos}
        for name in archive.namelist():
            root, speaker, file_name = name.split("/")
            assert root == "alignments" and file_name.endswith(".align")
            aligned[speaker].add(Path(file_name).stem)
            alignment = parse_alignment(archive.read(name).decode("ascii"))
            assert video_id_for(_sentence(alignment.text)) == Path(file_name).stem
    assert all(len(ids) == 2 for ids in videos.values())
    all_ids = [i for ids in videos.values() for i in ids] + sorted(aligned["s1"] - videos["s1"])
    assert len(all_ids) == len(set(all_ids)) == 7
    assert len(videos["s1"] - aligned["s1"]) == 1 and len(aligned["s1"] - videos["s1"]) == 1
    assert all(videos[s] == aligned[s] for s in ("s2", "s3"))


def test_corpus_plan_is_deterministic_and_defects_are_optional() -> None:
    first = plan_corpus(("s1", "s2", "s3"), 10, 0, True)
    assert first == plan_corpus(("s1", "s2", "s3"), 10, 0, True)
    assert first != plan_corpus(("s1", "s2", "s3"), 10, 1, True)
    assert len({c.video_id for c in first}) == 31
    clean = plan_corpus(("s1", "s2", "s3"), 10, 0, False)
    assert all(c.has_video and c.has_alignment for c in clean)


def test_corpus_rendering_is_deterministic(tmp_path: Path) -> None:
    contents = []
    for name in ("a", "b"):
        out = render_corpus(tmp_path / name, speakers=("s1", "s2"), clips_per_speaker=1, seed=5)
        with zipfile.ZipFile(out / "alignments.zip") as archive:
            texts = {n: archive.read(n) for n in archive.namelist()}
        members = {s: zipfile.ZipFile(out / f"{s}.zip").namelist() for s in ("s1", "s2")}
        contents.append((members, texts))
    assert contents[0] == contents[1]
