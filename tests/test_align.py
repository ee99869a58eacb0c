import zipfile

import pytest

from lipagent.data.align import AlignmentError, parse_alignment
from lipagent.grammar import is_valid_sentence

BBAF2N = (
    "0 23750 sil\r\n23750 29500 bin\r\n29500 34000 blue\r\n34000 35500 at\r\n"
    "35500 41000 f\r\n41000 47250 two\r\n47250 53000 now\r\n53000 74500 sil\r\n"
)


def test_crlf_and_lf_parse_the_same():
    assert parse_alignment(BBAF2N) == parse_alignment(BBAF2N.replace("\r\n", "\n"))


def test_text_and_spoken_frames():
    alignment = parse_alignment(BBAF2N)
    assert alignment.text == "bin blue at f two now"
    assert alignment.speech_start_frame == 23
    assert alignment.speech_end_frame == 52


def test_sp_tokens_are_not_words():
    text = "0 10000 sil\n10000 15000 bin\n15000 16000 sp\n16000 20000 blue\n20000 74500 sil\n"
    alignment = parse_alignment(text)
    assert alignment.text == "bin blue"
    assert alignment.speech_end_frame == 19


@pytest.mark.parametrize(
    "text, message",
    [
        ("0 100 sil\n", "no spoken words"),
        ("0 100\n", "expected"),
        ("a b bin\n", "integers"),
        ("500 100 bin\n", "ends before"),
    ],
)
def test_bad_alignments_say_what_is_wrong(text, message):
    with pytest.raises(AlignmentError, match=message):
        parse_alignment(text)


def test_every_real_s1_alignment_is_a_grid_sentence(grid_dir):
    with zipfile.ZipFile(grid_dir / "alignments.zip") as archive:
        names = [n for n in archive.namelist() if n.endswith(".align")]
        texts = {n: archive.read(n).decode() for n in names}
    assert len(names) == 1001
    with_sp = [n for n, t in texts.items() if " sp\r\n" in t]
    assert len(with_sp) >= 24
    for name, text in texts.items():
        alignment = parse_alignment(text)
        assert is_valid_sentence(alignment.text), name
        assert alignment.words[-1].end == 74500
        assert 0 <= alignment.speech_start_frame < alignment.speech_end_frame <= 74
