"""The visual speech-span detector: pure functions on made-up and recorded opening sequences, and on real clips."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from lipagent.config import DEFAULT_CONFIG, MosaicConfig
from lipagent.data.align import parse_alignment
from lipagent.transform.mouth import process_landmarker
from lipagent.transform.pipeline import decode_all, find_speech, prepare_video
from lipagent.transform.speech import (
    DEFAULT_SPEECH,
    NoSpeechFound,
    Span,
    SpanTracker,
    SpeechConfig,
    detect_span,
    mouth_opening,
    segment,
)

SILENT, OPEN = 0.01, 0.15
THRESHOLD_ONSET = SpeechConfig(onset="threshold")


def talk(frames: int, seed: int = 0) -> list[float]:
    """A mouth opening and closing on every syllable, as speech looks."""
    rng = np.random.default_rng(seed)
    return [OPEN * (0.55 + 0.45 * math.sin(i * 1.3)) + rng.uniform(0, 0.02) for i in range(frames)]


def test_opening_is_the_inner_lip_gap_over_the_mouth_width():
    points = np.zeros((468, 2))
    points[13], points[14] = (100, 200), (100, 212)
    points[78], points[308] = (70, 205), (130, 205)
    assert mouth_opening(points) == pytest.approx(12 / 60)
    assert math.isnan(mouth_opening(None))
    assert mouth_opening(points * 3) == pytest.approx(12 / 60), "scale-free: a face nearer the camera reads the same"


def test_one_sentence_with_a_short_pause_is_one_span():
    openings = [SILENT] * 20 + talk(14) + [SILENT] * 6 + talk(14, 1) + [SILENT] * 25
    [span] = segment(openings, THRESHOLD_ONSET)
    # The end trails the last open frame by the smoothing's half and one frame of closing motion.
    assert abs(span.start - 20) <= 1 and 0 <= span.end - 53 <= 3, span
    assert detect_span(openings, THRESHOLD_ONSET) == (span.start, span.end)
    # The jump onset starts up to onset_back + onset_lead frames before the first sharp opening: on real clips the
    # .align start comes that much before the lips visibly open.
    [jumped] = segment(openings)
    assert jumped.end == span.end and 20 - DEFAULT_SPEECH.onset_back - DEFAULT_SPEECH.onset_lead <= jumped.start < 20


def test_lips_that_part_and_hold_before_a_sentence_are_not_its_start():
    """Lips parting slowly (a breath) and holding still for 12 frames before the first word. The hold settles: that
    parting is over, too still to be speech, before the sentence starts, so both onsets start at the sentence. Without
    the settle rule the threshold onset starts at the parting and only the jump onset finds the first sharp opening."""
    parting = [SILENT + 0.012 * i for i in range(1, 8)]  # 0.012 per frame: slower than onset_jump
    openings = [SILENT] * 20 + parting + [parting[-1]] * 12 + talk(30) + [SILENT] * 25
    [early] = segment(openings, THRESHOLD_ONSET)
    [span] = segment(openings)
    assert 35 <= early.start < 40 and 35 <= span.start < 39 and span.end == early.end, (early, span)
    [early] = segment(openings, replace(THRESHOLD_ONSET, settle_frames=0))
    [span] = segment(openings, replace(DEFAULT_SPEECH, settle_frames=0))
    assert early.start < 27 and 35 <= span.start < 39 and span.end == early.end, (early, span)


def test_two_utterances_apart_are_two_spans_and_a_blip_is_none():
    openings = [SILENT] * 10 + talk(20) + [SILENT] * 30 + talk(25, 2) + [SILENT] * 20 + [0.2, 0.2] + [SILENT] * 20
    spans = segment(openings, THRESHOLD_ONSET)
    assert len(spans) == 2, spans
    assert abs(spans[0].start - 10) <= 1 and abs(spans[1].start - 60) <= 1
    assert detect_span(openings, THRESHOLD_ONSET) == (spans[0].start, spans[1].end), (
        "a file is one sentence: first start to last end"
    )


def test_a_mouth_that_takes_a_new_shape_and_holds_it_is_not_speaking():
    # A smile held for longer than the rest window reads as opening above rest until the window forgets the old
    # rest; without movement it must not count as an utterance, and speech after it is still found.
    openings = [SILENT] * 30 + [SILENT + 0.1] * 80 + [SILENT] * 20 + talk(25) + [SILENT] * 30
    [span] = segment(openings, THRESHOLD_ONSET)
    assert abs(span.start - 130) <= 1, span
    smile = [SILENT] * 30 + [SILENT + 0.1] * 80
    assert not segment(smile, SpeechConfig(min_moving_frames=0)), "the settle rule alone rejects it"
    assert not segment(smile, SpeechConfig(settle_frames=0)), "so does min_moving_frames alone"
    assert segment(smile, SpeechConfig(min_moving_frames=0, settle_frames=0)), "without both, it reads as speech"


def test_streaming_gives_what_the_whole_sequence_gives():
    openings = [SILENT] * 10 + talk(20) + [SILENT] * 30 + talk(25, 2) + [SILENT] * 5
    tracker = SpanTracker()
    online = [s for s in (tracker.push(o) for o in openings) if s is not None] + tracker.finish()
    assert online == segment(openings)
    assert online[-1] == Span(online[-1].start, online[-1].end) and online[-1].end <= len(openings) - 1


def test_frames_without_a_face_and_clips_without_speech():
    openings = [math.nan] * 5 + [SILENT] * 10 + talk(20) + [math.nan] * 3 + talk(5) + [SILENT] * 20
    start, end = detect_span(openings, THRESHOLD_ONSET)
    assert abs(start - 15) <= 1 and end >= 42
    with pytest.raises(NoSpeechFound, match="no face"):
        detect_span([math.nan] * 40)
    with pytest.raises(NoSpeechFound, match="never moved"):
        detect_span([SILENT] * 75)


NEGATIVE = "hangover, rest_window, still_change, min_moving_frames and settle_frames must be >= 0"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"smoothing": 2}, "smoothing must be an odd number of frames, got 2"),
        ({"smoothing": 0}, "smoothing must be an odd number of frames, got 0"),
        ({"stop_threshold": 0.1, "start_threshold": 0.05}, "need 0 <= stop_threshold <= start_threshold"),
        ({"stop_threshold": -0.01}, "need 0 <= stop_threshold <= start_threshold"),
        ({"hangover": -1}, NEGATIVE),
        ({"rest_window": -1}, NEGATIVE),
        ({"still_change": -0.001}, NEGATIVE),
        ({"min_moving_frames": -1}, NEGATIVE),
        ({"settle_frames": -1}, NEGATIVE),
        (
            {"settle_frames": 12, "still_frames": 12},
            "settle_frames (a mosaic's speech_settle) must be below still_frames=12, where the rest restarts and the "
            "hold ends; got 12",
        ),
        ({"min_frames": 0}, "min_frames and still_frames must be >= 1"),
        ({"still_frames": 0}, "min_frames and still_frames must be >= 1"),
        ({"onset": "sometime"}, "onset must be one of threshold, jump, got 'sometime'"),
        ({"onset_jump": -0.1}, "onset_jump, onset_back and onset_lead must be >= 0"),
        ({"onset_back": -1}, "onset_jump, onset_back and onset_lead must be >= 0"),
        ({"onset_lead": -1}, "onset_jump, onset_back and onset_lead must be >= 0"),
    ],
)
def test_settings_are_checked(bad, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SpeechConfig(**bad)


def test_the_edge_values_of_each_setting_are_allowed():
    edges = {"smoothing": 1, "stop_threshold": 0.05, "hangover": 0, "rest_window": 0, "still_change": 0.0}
    edges |= {"min_moving_frames": 0, "min_frames": 1, "still_frames": 1, "onset_jump": 0.0, "onset_back": 0}
    assert SpeechConfig(**edges, onset_lead=0, settle_frames=0).lookahead == 0
    assert SpeechConfig(still_frames=2, settle_frames=1).settle_frames == 1
    assert DEFAULT_SPEECH.lookahead == DEFAULT_SPEECH.smoothing // 2 == 1
    # A model records its onset rule; spans for it are found the same way, whatever the detector's default.
    assert DEFAULT_SPEECH.following(MosaicConfig(speech_onset="threshold")).onset == "threshold"
    assert DEFAULT_SPEECH.following(MosaicConfig(speech_onset="threshold")).hangover == DEFAULT_SPEECH.hangover
    assert MosaicConfig.from_dict({}).speech_onset == "threshold", "records from before the rule: threshold"


def _aligned(unpacked, video_id):
    alignment = parse_alignment((unpacked / "alignments" / "s1" / f"{video_id}.align").read_text())
    return alignment.speech_start_frame, alignment.speech_end_frame


def test_real_clips_spans_are_near_their_alignments(unpacked):
    videos = sorted((unpacked / "s1").glob("*.mpg"))[::15]
    starts, ends = [], []
    for path in videos:
        start, end = find_speech(decode_all(path))
        aligned = _aligned(unpacked, path.stem)
        starts.append(start - aligned[0])
        ends.append(end - aligned[1])
    starts, ends = np.abs(starts), np.abs(ends)
    assert len(videos) >= 25
    assert np.median(starts) <= 6 and np.percentile(starts, 90) <= 12, starts
    assert np.median(ends) <= 3 and np.percentile(ends, 90) <= 8, ends


def test_the_jump_onset_starts_nearer_the_alignment_than_the_threshold_on_real_clips(unpacked):
    """Why `onset="jump"` is the default, on real clips the onset was not tuned on (every 15th, offset by 7): it puts
    more starts within 3 frames of the alignment (on the Tasks API's smoothed landmarks its lead in mean error
    shrank to 0.2 frames over all 450 clips, 4.55 against 4.76, and does not show on these 30: docs/results.md)."""
    errors: dict[str, list[int]] = {"threshold": [], "jump": []}
    for path in sorted((unpacked / "s1").glob("*.mpg"))[7::15]:
        points = process_landmarker(DEFAULT_CONFIG, mode="tracking").clip_points(decode_all(path))
        openings = [mouth_opening(p) for p in points]
        for onset, found in errors.items():
            found.append(detect_span(openings, SpeechConfig(onset=onset))[0] - _aligned(unpacked, path.stem)[0])
    jump, threshold = np.abs(errors["jump"]), np.abs(errors["threshold"])
    assert len(jump) >= 25 and np.mean(jump <= 3) >= np.mean(threshold <= 3) + 0.1, errors


@pytest.mark.parametrize("video_id", ["lbwo3s"])
def test_a_face_that_rests_with_parted_lips_ends_its_sentence_on_time(s31_unpacked, video_id):
    """On this s31 clip the mouth relaxes into parted lips after the sentence; read as speech until the rest window
    catches up, the end runs 15 frames late. The settle rule ends it within 4 frames of the alignment. (With the
    legacy Face Mesh solution two more clips behaved so; the Tasks API's landmarks read one of them as closing, and
    end the other 7 frames late either way: docs/results.md.)"""
    path = s31_unpacked / "s31" / f"{video_id}.mpg"
    alignment = parse_alignment((s31_unpacked / "alignments" / "s31" / f"{video_id}.align").read_text())
    points = process_landmarker(DEFAULT_CONFIG, mode="tracking").clip_points(decode_all(path))
    openings = [mouth_opening(p) for p in points]
    assert abs(detect_span(openings)[1] - alignment.speech_end_frame) <= 4
    assert detect_span(openings, SpeechConfig(settle_frames=0))[1] - alignment.speech_end_frame >= 9


def test_transcribe_samples_the_detected_span_by_default(unpacked):
    path = unpacked / "s1" / "bbaf2n.mpg"
    auto = prepare_video(path)
    assert auto.how == "auto" and auto.span == find_speech(decode_all(path))
    assert auto.mosaic.frame_indices[0] == auto.span[0] and auto.mosaic.frame_indices[-1] == auto.span[1]
    assert "detected from the mouth" in auto.describe()
    whole = prepare_video(path, "whole")
    assert whole.span == (0, 74) and whole.mosaic.jpeg != auto.mosaic.jpeg
    given = prepare_video(path, _aligned(unpacked, "bbaf2n"))
    assert given.how == "given" and given.span == _aligned(unpacked, "bbaf2n")
    with pytest.raises(ValueError, match="auto, whole"):
        prepare_video(path, "sometimes")


def test_a_dataset_built_on_detected_spans_holds_what_inference_reads(grid_dir, unpacked, tmp_path):
    import datasets

    from lipagent.data.prepare import PrepareOptions, prepare
    from lipagent.records import read_dataset_record

    config = DEFAULT_CONFIG
    out = tmp_path / "detected"
    summary = prepare(
        PrepareOptions(
            speakers=("s2",),
            out=out,
            grid_dir=grid_dir,
            cache_dir=tmp_path / "cache",
            num_proc=1,
            speech_span="detected",
        )
    )
    record = read_dataset_record(out)
    assert summary.kept >= 1 and (record.mosaic, record.speech_span) == (config, "detected")
    rows = datasets.concatenate_datasets(list(datasets.load_dataset(str(out)).values()))
    for row in rows.cast_column("image", datasets.Image(decode=False)):
        read = prepare_video(unpacked / row["speaker"] / f"{row['video_id']}.mpg", "auto", config)
        assert row["image"]["bytes"] == read.mosaic.jpeg and tuple(row["frame_indices"]) == read.mosaic.frame_indices


def test_a_dataset_built_on_both_spans_trains_on_each_and_evaluates_on_what_inference_reads(
    grid_dir, unpacked, tmp_path
):
    import shutil

    import datasets

    from lipagent.data.prepare import PrepareOptions, prepare
    from lipagent.data.validate import validate_folder
    from lipagent.records import read_dataset_record

    config = DEFAULT_CONFIG
    out = tmp_path / "both"
    options = PrepareOptions(
        speakers=("s1",),
        out=out,
        grid_dir=grid_dir,
        limit=6,
        cache_dir=tmp_path / "cache",
        num_proc=1,
        speech_span="both",
    )
    summary = prepare(options)
    record = read_dataset_record(out)
    assert (record.mosaic, record.speech_span) == (config, "both")
    assert summary.split_sizes == {"train": 10, "validation": 1, "test": 0}
    splits = datasets.load_dataset(str(out))
    for split, rows in splits.items():
        by_clip: dict[str, list[tuple[bytes, tuple[int, ...]]]] = {}
        for row in rows.cast_column("image", datasets.Image(decode=False)):
            by_clip.setdefault(row["video_id"], []).append((row["image"]["bytes"], tuple(row["frame_indices"])))
        for video_id, got in by_clip.items():
            path = unpacked / "s1" / f"{video_id}.mpg"
            detected = prepare_video(path, "auto", config).mosaic
            expected = [(detected.jpeg, detected.frame_indices)]
            if split == "train":
                aligned = prepare_video(path, _aligned(unpacked, video_id), config).mosaic
                expected.insert(0, (aligned.jpeg, aligned.frame_indices))
            assert got == expected, (split, video_id)
    assert validate_folder(out).ok, validate_folder(out).problems
    assert "each clip is two rows" in (out / "README.md").read_text() and "from 6 clips" in summary.text()
    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    validation = next((tampered / "data").glob("validation-*.parquet"))
    datasets.concatenate_datasets([splits["validation"]] * 2).to_parquet(str(validation))
    report = validate_folder(tampered)
    assert any("bbas2p 2 times in validation" in p for p in report.problems), report.problems


def alternating(frames: int) -> list[float]:
    """Speech at its plainest: the mouth wide (0.3) and nearly shut (0.1) on alternate frames."""
    return [0.3 if i % 2 == 0 else 0.1 for i in range(frames)]


def test_exact_span_of_a_plain_utterance():
    """Worked by hand. Speech fills frames 20-39 of a shut mouth. Smoothed over 3 frames, frame 19 already averages
    in 0.3: activity 0.1 + change 0.1 > 0.05, so the threshold onset starts there. Frame 40 averages 0.033 (change
    0.1) and frame 41 averages 0 (change 0.033), both above 0.02: the last active frame is 41. The jump onset finds
    the sharp opening at frame 20, walks back over the flat mouth onset_back=3 frames to 17 and keeps
    onset_lead=1 frame more: 16."""
    openings = [0.0] * 20 + alternating(20) + [0.0] * 35
    assert segment(openings, THRESHOLD_ONSET) == [Span(19, 41)]
    assert segment(openings) == [Span(16, 41)]
    assert detect_span(openings) == (16, 41)


def test_an_utterance_cut_by_the_clips_end_ends_on_its_last_frame():
    openings = [0.0] * 20 + alternating(30)
    assert segment(openings, THRESHOLD_ONSET) == [Span(19, 49)]


def test_a_pause_of_exactly_the_hangover_stays_inside_one_more_frame_splits():
    """After speech in 20-39 the last active frame is 41; speech resuming at frame 40 + gap is active from frame
    39 + gap, so the silent run is gap - 3 frames: 12 (the hangover) for a gap of 15, 13 for 16."""

    def two_bursts(gap: int) -> list[float]:
        return [0.0] * 20 + alternating(20) + [0.0] * gap + alternating(20) + [0.0] * 30

    assert segment(two_bursts(15), THRESHOLD_ONSET) == [Span(19, 76)]
    assert segment(two_bursts(16), THRESHOLD_ONSET) == [Span(19, 41), Span(55, 77)]


def test_the_shortest_utterance_kept():
    """An utterance spans its speech and 3 frames more (one before, two after): 9 frames of speech make the 12 of
    min_frames, 8 are too few."""
    assert segment([0.0] * 20 + alternating(9) + [0.0] * 30, THRESHOLD_ONSET) == [Span(19, 30)]
    assert segment([0.0] * 20 + alternating(8) + [0.0] * 30, THRESHOLD_ONSET) == []


def test_a_stream_longer_than_the_kept_history_keeps_its_frame_numbers():
    """Live streams run for minutes: the plain utterance above, after 1500 silent frames (the openings kept), is the
    same span 1500 frames later."""
    assert segment([0.0] * 1500 + [0.0] * 20 + alternating(20) + [0.0] * 35) == [Span(1516, 1541)]


def test_an_utterance_longer_than_the_kept_history_starts_at_the_oldest_kept_frame():
    """Speech from frame 20 to 1619 closes at frame 1635, when the oldest of the 1500 openings kept is frame 136:
    the onset cannot be placed before it."""
    assert segment([0.0] * 20 + alternating(1600) + [0.0] * 35) == [Span(136, 1621)]


def test_speech_from_the_first_frame_starts_at_frame_0():
    assert segment(alternating(30) + [0.0] * 30) == [Span(0, 31)]


def test_a_sharp_opening_is_a_step_larger_than_onset_jump_not_equal_to_it():
    """With onset_jump 0.125 (exact in binary), the mouth rises 0.0625 a frame from frame 20, steps up exactly 0.125
    at frame 24 and by 0.375 at frame 25: the jump is at 25, the walk back over the rising mouth stops onset_back=3
    frames before it at 22, and the lead gives 21 (counting the equal step would give 20)."""
    rising = [0.0] * 20 + [0.0625, 0.125, 0.1875, 0.25, 0.375] + [0.75 if i % 2 == 0 else 0.25 for i in range(20)]
    assert segment(rising + [0.0] * 35, SpeechConfig(onset_jump=0.125)) == [Span(21, 46)]


EXACT = {
    "smoothing": 1,
    "motion_weight": 0.0,
    "rest_window": 0,
    "still_change": 0.5,
    "still_frames": 4,
    "start_threshold": 0.25,
    "stop_threshold": 0.125,
    "hangover": 3,
    "min_frames": 3,
    "min_moving_frames": 0,
    "settle_frames": 0,
    "onset": "threshold",
}
"""Settings under which a frame's activity is its opening, in binary fractions a comparison meets exactly."""


def test_activity_must_exceed_the_thresholds_not_touch_them():
    assert segment([0.25] * 30, SpeechConfig(**EXACT)) == []
    assert segment([0.5] * 20 + [0.125] * 30, SpeechConfig(**EXACT)) == [Span(0, 19)]


def test_an_utterance_needs_min_moving_frames_frames_that_move_by_still_change_or_more():
    """Twenty frames that change by 0 move by still_change=0 or more: exactly min_moving_frames=20, enough."""
    settings = {**EXACT, "still_change": 0.0, "min_moving_frames": 20, "min_frames": 5}
    assert segment([0.5] * 20 + [0.0] * 10, SpeechConfig(**settings)) == [Span(0, 19)]


def test_a_mouth_still_for_still_frames_frames_is_at_its_new_rest():
    """A step to a new shape (a change of exactly still_change is not still) reads as speech until the mouth has been
    still for still_frames frames: frames 11, 12 and 13, not 14."""
    assert segment([0.0] * 10 + [0.5] * 30, SpeechConfig(**{**EXACT, "rest_window": 50})) == [Span(10, 13)]


SPEAKING = [0.0] * 10 + [0.5, 1.0] * 5
"""Closed for ten frames, then ten frames of speech whose every frame moves by 0.5 (not still, at still_change 0.5)."""


def test_a_mouth_that_holds_a_parted_shape_for_settle_frames_frames_has_stopped_speaking():
    """After the speech the mouth steps to 0.25 (frame 20, moving) and holds there, above the stop threshold: still on
    frames 21, 22 and 23, so with settle_frames=3 the utterance ends at frame 20, its last moving frame. Without the
    rule the held shape reads as speech to the end of the stream."""
    held = SPEAKING + [0.25] * 20
    settings = {**EXACT, "still_frames": 8}
    assert segment(held, SpeechConfig(**{**settings, "settle_frames": 3})) == [Span(10, 20)]
    assert segment(held, SpeechConfig(**settings)) == [Span(10, 39)]


def test_a_hold_one_frame_shorter_than_settle_frames_stays_inside_the_utterance():
    """Still on frames 21 and 22 only (two of settle_frames=3), then the mouth moves again at 23 and closes."""
    paused = SPEAKING + [0.25] * 3 + [1.0] + [0.0] * 10
    assert segment(paused, SpeechConfig(**{**EXACT, "still_frames": 8, "settle_frames": 3})) == [Span(10, 23)]


def test_a_closed_mouth_does_not_count_toward_settling():
    """Below the stop threshold the hangover ends the utterance, not the settle rule: the hold counts only above it."""
    closing = SPEAKING + [0.125] * 3 + [1.0] + [0.0] * 10
    assert segment(closing, SpeechConfig(**{**EXACT, "still_frames": 8, "settle_frames": 2})) == [Span(10, 23)]


def test_an_utterance_closed_while_the_stream_ends_is_returned():
    """The hangover runs out in the frames `finish` adds for the look-ahead of a 9-frame smoothing."""
    settings = {**EXACT, "smoothing": 9}
    assert segment([0.0] * 10 + [0.5] * 20 + [0.0] * 6, SpeechConfig(**settings)) == [Span(10, 31)]


@pytest.mark.parametrize(
    "openings, span",
    [
        ([0.3] * 6 + [0.6] * 15 + [0.0] * 10, Span(2, 20)),  # speech from the first frame, the jump at frame 6
        ([0.3] + [0.6] * 9 + [0.9] * 11 + [0.0] * 10, Span(0, 20)),  # a jump already at frame 1 is the onset
        ([0.3] * 10 + [0.6] + [0.0] * 10, Span(6, 10)),  # a jump on the utterance's last frame counts
        ([0.3] * 11 + [0.0] * 10, Span(0, 10)),  # the drop after the last frame does not
    ],
)
def test_the_onset_jump_is_searched_from_the_second_frame_to_the_last_of_the_utterance(openings, span):
    settings = {**EXACT, "onset": "jump", "onset_jump": 0.125, "onset_back": 3, "onset_lead": 1}
    assert segment(openings, SpeechConfig(**settings)) == [span]
