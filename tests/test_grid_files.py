import zipfile
from pathlib import Path

import pytest

from lipagent.data.grid_files import AlignmentFile, GridArchiveError, VideoFile, check_speakers, check_zip, pair_files


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_good_zip_lists_members(tmp_path):
    assert check_zip(_zip(tmp_path / "s9.zip", {"s9/a.mpg": b"x"})) == ["s9/a.mpg"]


@pytest.mark.parametrize(
    "member", ["../evil.mpg", "s1/../../evil.mpg", "/etc/evil.mpg", "C:/evil.mpg", "s1\\..\\..\\evil"]
)
def test_members_outside_the_folder_are_refused(tmp_path, member):
    archive = _zip(tmp_path / "s1.zip", {"s1/ok.mpg": b"x", member: b"y"})
    with pytest.raises(GridArchiveError, match=r"s1\.zip.*refusing"):
        check_zip(archive)


def test_truncated_zip_names_the_file(grid_dir, tmp_path):
    truncated = tmp_path / "s2.zip"
    truncated.write_bytes((grid_dir / "s2.zip").read_bytes()[:300_000])
    with pytest.raises(GridArchiveError, match=r"s2\.zip.*not a readable zip"):
        check_zip(truncated)


def test_corrupt_member_names_the_file_and_member(grid_dir, tmp_path):
    data = bytearray((grid_dir / "s2.zip").read_bytes())
    data[200_000] ^= 0xFF
    corrupt = tmp_path / "s2.zip"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(GridArchiveError, match=r"s2\.zip.*(corrupt|not a readable)"):
        check_zip(corrupt)


def test_speaker_names():
    assert check_speakers(["1", "S2", "s2", "s34"]) == ["s1", "s2", "s34"]
    for bad in (["s21"], ["s35"], ["x"], []):
        with pytest.raises(ValueError):
            check_speakers(bad)


def _video(vid, speaker):
    return VideoFile(vid, speaker, Path(f"/v/{speaker}/{vid}.mpg"))


def _align(vid, folder):
    return AlignmentFile(vid, folder, Path(f"/a/{folder}/{vid}.align"))


def test_misfiled_alignment_folders_pair_by_id():
    videos = [_video("aaaa1a", "s5"), _video("aaaa2a", "s5")]
    alignments = [_align("aaaa1a", "s6"), _align("aaaa2a", "s6"), _align("bbbb1b", "s5"), _align("aaaa3a", "s6")]
    pairs = {p.video_id: p for p in pair_files(videos, alignments)}
    assert pairs["aaaa1a"].alignment == Path("/a/s6/aaaa1a.align")
    assert pairs["aaaa3a"].video is None and pairs["aaaa3a"].speaker == "s5"
    assert "bbbb1b" not in pairs, "folder s5 holds another speaker's alignments and was not chosen"


def test_missing_alignment_and_limit():
    videos = [_video(f"v{i}", "s1") for i in range(5)]
    alignments = [_align("v0", "s1"), _align("v1", "s1"), _align("zz", "s1")]
    pairs = pair_files(videos, alignments)
    assert [p.video_id for p in pairs if p.alignment is None] == ["v2", "v3", "v4"]
    assert [p.video_id for p in pairs if p.video is None] == ["zz"]
    limited = pair_files(videos, alignments, limit=2)
    assert [p.video_id for p in limited] == ["v0", "v1"]
