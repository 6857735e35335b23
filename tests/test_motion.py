"""Motion objects and the .json / .csv motion files."""
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from enliven.shared.channels import CHANNEL_NAMES, CHANNELS
from enliven.shared.motion import (
    MAX_FILE_BYTES,
    MAX_FRAMES,
    Motion,
    MotionError,
    load_motion,
    motion_from_dict,
    motion_from_text,
    motion_to_dict,
    save_motion,
)


def some_motion(fps: float = 30.0) -> Motion:
    rng = np.random.default_rng(7)
    lows = np.array([c.minimum for c in CHANNELS])
    highs = np.array([c.maximum for c in CHANNELS])
    return Motion.from_full(rng.uniform(lows, highs, size=(12, len(CHANNELS))), fps)


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- Motion


def test_subset_motion_fills_the_other_channels_with_defaults_in_table_order():
    motion = Motion(24, ("jaw_open", "head_yaw"), [[0.5, 10.0], [0.25, -5.0]])
    full = motion.full()
    assert full.shape == (2, len(CHANNELS))
    assert full.dtype == np.float32
    assert full[:, CHANNEL_NAMES.index("jaw_open")].tolist() == [0.5, 0.25]
    assert full[:, CHANNEL_NAMES.index("head_yaw")].tolist() == [10.0, -5.0]
    others = [i for i, name in enumerate(CHANNEL_NAMES) if name not in ("jaw_open", "head_yaw")]
    assert np.all(full[:, others] == np.array([CHANNELS[i].default for i in others]))
    assert motion.frame_count == 2
    assert motion.values.dtype == np.float32


def test_unknown_channel_error_names_it_and_suggests_the_right_spelling():
    with pytest.raises(MotionError, match=r"'blink_left'.*did you mean 'blink_l'"):
        Motion(24, ("blink_left",), [[0.0]])


@pytest.mark.parametrize(
    "fps, channels, values, complaint",
    [
        (0, ("jaw_open",), [[0.0]], "fps"),
        (float("nan"), ("jaw_open",), [[0.0]], "fps"),
        (5000, ("jaw_open",), [[0.0]], "fps"),
        (24, ("jaw_open", "jaw_open"), [[0.0, 0.0]], "more than once"),
        (24, ("jaw_open", "wide"), [[0.0]], "shape"),
        (24, ("jaw_open",), np.zeros((0, 1)), "at least one frame"),
    ],
)
def test_invalid_motions_are_refused(fps, channels, values, complaint):
    with pytest.raises(MotionError, match=complaint):
        Motion(fps, channels, values)


def test_sanitized_replaces_non_finite_values_and_clamps_with_warnings():
    motion = Motion(
        24,
        ("jaw_open", "gaze_x"),
        [[1.7, 0.0], [0.5, 0.0], [1.2, 0.0], [1.1, 0.0], [0.0, np.nan], [0.0, np.inf]],
    )
    fixed, warnings = motion.sanitized()
    assert fixed.values[:, 0].tolist() == pytest.approx([1.0, 0.5, 1.0, 1.0, 0.0, 0.0])
    assert fixed.values[:, 1].tolist() == [0.0] * 6
    assert warnings == [
        "jaw_open: 3 frames above 1 (max 1.7), clamped",
        "gaze_x: 2 non-finite values (frames 4, 5), set to default 0",
    ]
    assert np.isnan(motion.values[4, 1]), "the original motion is left alone"


def test_sanitized_clamps_values_below_the_minimum():
    fixed, warnings = Motion(24, ("head_yaw",), [[-60.0], [10.0]]).sanitized()
    assert fixed.values[:, 0].tolist() == [-45.0, 10.0]
    assert warnings == ["head_yaw: 1 frame below -45 (min -60), clamped"]


def test_sanitized_strict_raises_listing_the_problems_and_passes_clean_motion():
    motion = Motion(24, ("jaw_open", "gaze_x"), [[1.5, np.nan]])
    with pytest.raises(MotionError, match=r"jaw_open: 1 frame above 1 .*gaze_x: 1 non-finite value"):
        motion.sanitized(strict=True)
    clean, warnings = Motion(24, ("jaw_open",), [[0.5]]).sanitized(strict=True)
    assert warnings == [] and clean.values.tolist() == [[0.5]]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".json", ".csv", ".JSON"])
def test_files_round_trip_values_and_fps(tmp_path, suffix):
    motion = some_motion(fps=29.97)
    path = tmp_path / f"motion{suffix}"
    save_motion(motion, path)
    loaded = load_motion(path)
    assert loaded.fps == pytest.approx(29.97, abs=1e-9)
    assert loaded.channels == CHANNEL_NAMES
    np.testing.assert_allclose(loaded.values, motion.values, rtol=0, atol=1e-6)


def test_subset_and_order_of_channels_survive_a_round_trip(tmp_path):
    motion = Motion(12, ("wide", "head_roll"), [[0.25, -3.5], [0.75, 4.125]])
    for name in ("m.json", "m.csv"):
        save_motion(motion, tmp_path / name)
        loaded = load_motion(tmp_path / name)
        assert loaded.channels == ("wide", "head_roll")
        assert loaded.fps == 12
        assert loaded.values.tolist() == [[0.25, -3.5], [0.75, 4.125]]


def test_dict_form_matches_the_documented_layout():
    data = motion_to_dict(Motion(24, ("jaw_open",), [[0.1], [0.2]]))
    assert data == {
        "format": "enliven-motion",
        "version": 1,
        "fps": 24.0,
        "channels": ["jaw_open"],
        "frames": [[0.1], [0.2]],
    }
    np.testing.assert_allclose(motion_from_dict(data).values, [[0.1], [0.2]], rtol=1e-6)


def test_nan_is_written_as_null_and_read_back_as_nan(tmp_path):
    motion = Motion(24, ("jaw_open", "smile_l"), [[np.nan, 0.5], [0.25, np.nan]])
    path = tmp_path / "gaps.json"
    save_motion(motion, path)
    text = path.read_text()
    assert "NaN" not in text
    assert json.loads(text)["frames"] == [[None, 0.5], [0.25, None]]
    loaded = load_motion(path)
    assert math.isnan(loaded.values[0, 0]) and math.isnan(loaded.values[1, 1])
    assert loaded.values[1, 0] == 0.25


def test_nan_in_csv_is_an_empty_cell_and_read_back_as_nan(tmp_path):
    path = tmp_path / "gaps.csv"
    save_motion(Motion(24, ("jaw_open",), [[np.nan], [0.5]]), path)
    assert path.read_text().splitlines()[1] == "0,0.000000,"
    assert math.isnan(load_motion(path).values[0, 0])


def test_csv_is_written_with_frame_and_time_columns(tmp_path):
    path = tmp_path / "m.csv"
    save_motion(Motion(25, ("jaw_open", "head_yaw"), [[0.5, -12.25], [1.0, 0.0]]), path)
    assert path.read_text() == "frame,time,jaw_open,head_yaw\n0,0.000000,0.5,-12.25\n1,0.040000,1,0\n"


# ---------------------------------------------------------------- CSV reading


def test_csv_without_time_column_uses_the_fps_argument_or_24(tmp_path):
    path = write(tmp_path / "m.csv", "jaw_open,gaze_x\n0.1,0.2\n0.3,-0.4\n")
    assert load_motion(path, fps=60).fps == 60
    motion = load_motion(path)
    assert motion.fps == 24
    np.testing.assert_allclose(motion.values, [[0.1, 0.2], [0.3, -0.4]], rtol=1e-6)


def test_csv_fps_comes_from_the_time_column_unless_given(tmp_path):
    rows = "".join(f"{i},{i / 30:.6f},0.5\n" for i in range(10))
    path = write(tmp_path / "m.csv", "frame,time,jaw_open\n" + rows)
    assert load_motion(path).fps == 30
    assert load_motion(path, fps=12).fps == 12


def test_csv_accepts_bom_spaces_blank_lines_and_nan_cells(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffjaw_open , blink_l\n 0.5 , NaN\n\n0.25,\n".encode("utf-8"))
    motion = load_motion(path)
    assert motion.channels == ("jaw_open", "blink_l")
    assert motion.values[:, 0].tolist() == [0.5, 0.25]
    assert np.isnan(motion.values[:, 1]).all()


def test_csv_text_in_a_numeric_cell_names_file_line_and_column(tmp_path):
    path = write(tmp_path / "bad.csv", "frame,jaw_open\n0,0.5\n1,wide open\n")
    with pytest.raises(MotionError) as error:
        load_motion(path)
    assert str(path) in str(error.value)
    assert "line 3" in str(error.value) and "'jaw_open'" in str(error.value)
    assert "'wide open'" in str(error.value)


def test_csv_ragged_row_names_file_and_line(tmp_path):
    path = write(tmp_path / "ragged.csv", "jaw_open,gaze_x\n0.1,0.2\n0.3\n")
    with pytest.raises(MotionError, match=r"ragged\.csv: line 3 has 1 cells but the header has 2"):
        load_motion(path)


def test_csv_of_values_only_asks_for_the_header_line(tmp_path):
    path = write(tmp_path / "values.csv", "0,0.1,0.5\n0,0.2,0.4\n")  # (was "column '0' appears more than once")
    with pytest.raises(MotionError, match=r"values\.csv: the first line must name the columns .* it holds the "
                                          r"number '0'"):
        load_motion(path)


def test_csv_unknown_column_names_file_and_suggests(tmp_path):
    path = write(tmp_path / "typo.csv", "jaw_opne\n0.1\n")
    with pytest.raises(MotionError, match=r"typo\.csv: unknown channel 'jaw_opne' \(did you mean 'jaw_open'"):
        load_motion(path)


# ---------------------------------------------------------------- JSON problems


def json_motion(**changes) -> dict:
    data = {"format": "enliven-motion", "version": 1, "fps": 24, "channels": ["jaw_open", "smile_l"],
            "frames": [[0.0, 0.1], [0.2, 0.3]]}
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "text, complaint",
    [
        ('{"format": "enliven-motion", "version": 1,', r"not valid JSON \(line 1"),
        (json.dumps(json_motion(format="something-else")), r"not an Enliven motion file.*'something-else'"),
        (json.dumps(json_motion(version=2)), r"version 2 holds a motion for each face under \"faces\", and this file "
                                             r"has none"),
        (json.dumps(json_motion(version=9)), r"version 9 is newer .*supported versions: 1 for one face's motion, 2 "
                                             r"for a motion per face"),
        (json.dumps({"format": "enliven-motion", "version": 1, "fps": 24}), r"missing 'channels', 'frames'"),
        (json.dumps(json_motion(frames=[[0.0, 0.1], [0.2]])), r"frame 1 has 1 values but there are 2 channels"),
        (json.dumps(json_motion(frames=[[0.0, 0.1], [0.2, "big"]])), r"frame 1, column 1 \(smile_l\).*'big'"),
        (json.dumps(json_motion(frames=[[0.0, True]])), r"frame 0, column 1 \(smile_l\)"),
        (json.dumps(json_motion(fps="fast")), r"\"fps\" must be a number"),
        (json.dumps(json_motion(version="1")), r"\"version\" must be a whole number \(supported: 1 for one face's "
                                               r"motion, 2 for a motion per face\)"),
        (json.dumps(json_motion(channels=["jaw_open", "smiel_l"])), r"unknown channel 'smiel_l'"),
    ],
)
def test_bad_json_files_give_motion_errors_naming_the_file(tmp_path, text, complaint):
    path = write(tmp_path / "broken.json", text)
    with pytest.raises(MotionError, match=complaint) as error:
        load_motion(path)
    assert str(error.value).startswith(str(path) + ": ")


def test_json_fps_argument_overrides_the_file(tmp_path):
    path = write(tmp_path / "m.json", json.dumps(json_motion()))
    assert load_motion(path).fps == 24
    assert load_motion(path, fps=50).fps == 50


# ---------------------------------------------------------------- files


def test_unknown_extension_and_missing_file_are_motion_errors(tmp_path):
    with pytest.raises(MotionError, match=r"unknown motion file type '\.txt'"):
        load_motion(tmp_path / "motion.txt")
    with pytest.raises(MotionError, match=r"missing\.json: cannot read motion file: No such file"):
        load_motion(tmp_path / "missing.json")
    with pytest.raises(MotionError, match=r"unknown motion file type '\.bvh'"):
        save_motion(some_motion(), tmp_path / "motion.bvh")


def test_save_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "motion.json"
    save_motion(Motion(24, ("jaw_open",), [[0.1]]), path)
    save_motion(Motion(24, ("jaw_open",), [[0.9]]), path)
    assert [p.name for p in tmp_path.iterdir()] == ["motion.json"]
    np.testing.assert_allclose(load_motion(path).values, [[0.9]], rtol=1e-6)


def test_failed_save_leaves_no_temporary_file(tmp_path):
    # A non-empty directory where the file should go: the final rename fails.
    blocker = tmp_path / "motion.csv"
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    with pytest.raises(OSError):
        save_motion(some_motion(), blocker)
    assert [p.name for p in tmp_path.iterdir()] == ["motion.csv"]
    assert blocker.is_dir()


# ---------------------------------------------------------------- hostile files
#
# Files from an adversarial test run: each used to escape as RecursionError,
# ValueError or a numpy warning instead of the loader's MotionError.

HOSTILE_JSON = '{"format": "enliven-motion", "version": 1, "fps": 24, "channels": ["blink_l"], "frames": [[%s]]}'


def test_deeply_nested_json_is_a_motion_error_not_a_recursion_error(tmp_path):
    path = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(MotionError, match=r"deep\.json: JSON nested more than 32 levels deep"):
        load_motion(path)
    # Brackets inside strings are text, not nesting.
    names = write(tmp_path / "brackets.json", json.dumps(json_motion(comment="[" * 100_000 + '\\"{')))
    assert load_motion(names).channels == ("jaw_open", "smile_l")


@pytest.mark.parametrize("number", ["9" * 5000, "0." + "1" * 5000, "-" + "9" * 101])
def test_over_long_numbers_are_refused_with_a_short_message(tmp_path, number):
    path = write(tmp_path / "long.json", HOSTILE_JSON % number)
    with pytest.raises(MotionError, match=r"long\.json: a number \d+ characters long .*at most 100") as error:
        load_motion(path)
    assert len(str(error.value)) < 300


def test_over_long_version_or_fps_numbers_are_refused_too(tmp_path):
    path = write(tmp_path / "v.json", HOSTILE_JSON.replace('"version": 1', '"version": ' + "1" * 5000) % "0")
    with pytest.raises(MotionError, match="at most 100 characters"):
        load_motion(path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as file:  # sparse: no 64 MiB written to disk
        file.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(MotionError, match=r"huge\.json: larger than the 64 MiB a motion file may have"):
        load_motion(path)


@pytest.mark.parametrize("huge", ["1e30", "1e308", "1.7976931348623157e308", "1e999", "123" + "0" * 90])
def test_huge_finite_values_are_clamped_like_any_out_of_range_value_without_warnings(tmp_path, huge):
    json_path = write(tmp_path / "m.json", HOSTILE_JSON % f"-{huge}], [{huge}")
    csv_path = write(tmp_path / "m.csv", f"blink_l,head_yaw\n{huge},-{huge}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" fails the test
        fixed, notes = load_motion(json_path).sanitized()
        assert fixed.values[:, 0].tolist() == [0.0, 1.0]  # 1e308 closes the eye like 1e30 does
        assert notes[0].startswith("blink_l: 1 frame above 1 (max ") and notes[0].endswith("), clamped")
        # float32 holds at most 3.4e38: a larger value is not reported as if the file said 3.4e38
        assert ("(max at least 3.40282e+38)" in notes[0]) == (huge != "1e30"), notes[0]
        fixed, _ = load_motion(csv_path).sanitized()
        assert fixed.values.tolist() == [[1.0, -45.0]]
        with pytest.raises(MotionError, match="blink_l: 1 frame above 1"):  # out of range, not "non-finite"
            load_motion(json_path).sanitized(strict=True)


@pytest.mark.parametrize("kind, no_value", [
    ("json", "null"), ("json", "NaN"), ("json", "Infinity"), ("json", "-Infinity"),
    ("csv", ""), ("csv", "nan"), ("csv", "NaN"), ("csv", "inf"), ("csv", "-Infinity"),
])
def test_no_value_in_any_spelling_becomes_the_default_or_is_refused_with_strict(kind, no_value):
    # The documented rule: non-finite means "no value" in both formats (also
    # what a non-finite value written out reads back as), never "very large".
    text = HOSTILE_JSON % no_value if kind == "json" else f"blink_l,jaw_open\n{no_value},0.5\n"
    motion = motion_from_text(text, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed, notes = motion.sanitized()
    assert fixed.values[0, fixed.channels.index("blink_l")] == 0.0  # open, the default
    assert notes == ["blink_l: 1 non-finite value (frame 0), set to default 0"]
    with pytest.raises(MotionError, match="non-finite"):
        motion.sanitized(strict=True)


def test_csv_with_an_absurd_line_or_cell_is_refused_naming_the_line(tmp_path):
    path = write(tmp_path / "wide.csv", "blink_l\n0\n" + "1" * 200_000 + "\n")
    with pytest.raises(MotionError, match=r"wide\.csv: line 3 is 200000 characters long; .*at most 4096"):
        load_motion(path)
    path = write(tmp_path / "digits.csv", "blink_l\n" + "1" * 500 + "\n")
    with pytest.raises(MotionError, match=r"line 2, column 'blink_l': a number 500 characters long"):
        load_motion(path)


def test_csv_with_more_frames_than_the_limit_is_refused():
    with pytest.raises(MotionError, match=f"more than {MAX_FRAMES} frames"):
        motion_from_text("blink_l\n" + "0\n" * (MAX_FRAMES + 1), "csv")
    assert motion_from_text("blink_l\n" + "0\n" * 1000, "csv").frame_count == 1000


def test_json_with_more_frames_than_the_limit_is_refused():
    with pytest.raises(MotionError, match=f"at most {MAX_FRAMES}"):
        motion_from_text(HOSTILE_JSON % ("0" + "], [0" * MAX_FRAMES), "json")


def test_csv_times_near_the_float_limit_are_a_frame_rate_error_not_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MotionError, match="cannot work out the frame rate"):
            motion_from_text("time,blink_l\n1e999,0\n-1e999,1\n", "csv")
        with pytest.raises(MotionError, match="fps must be above 0 and at most 1000"):
            motion_from_text("time,blink_l\n0,0\n5e-324,1\n", "csv")


def test_a_channel_listed_a_million_times_is_refused_quickly():
    # Counting each name's repeats one by one would take hours.
    data = json_motion(channels=["jaw_open"] * 1_000_000, frames=[[0.0]])
    with pytest.raises(MotionError, match="channel jaw_open listed more than once"):
        motion_from_dict(data)


@pytest.mark.parametrize("kind, text", [
    ("json", json.dumps(json_motion(channels=["x" * 10_000_000]))),
    ("json", json.dumps(json_motion(format="f" * 1_000_000))),
    ("json", json.dumps(json_motion(frames=[[0.0, "s" * 1_000_000]]))),
    ("csv", "blink_l," + "y" * 4000 + "\n0,0\n"),
])
def test_megabytes_where_a_name_should_be_give_a_one_line_message(kind, text):
    with pytest.raises(MotionError) as error:
        motion_from_text(text, kind, "f.json")
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


# ---------------------------------------------------------------- fuzz


def _json_motion_text(values: list[str]) -> str:
    return ('{"format": "enliven-motion", "version": 1, "fps": 24, "channels": ["blink_l", "head_yaw"], '
            f'"frames": [[{values[0]}, {values[1]}], [{values[2]}, {values[3]}]]}}')


def _csv_motion_text(values: list[str]) -> str:
    return f"frame,time,blink_l,head_yaw\n0,0,{values[0]},{values[1]}\n1,0.04,{values[2]},{values[3]}\n"


# What the adversarial run found, and the neighbours of each.
_HOSTILE_VALUES = ["1e308", "-1e308", "1e999", "-1e999", "1e30", "5e-324", "NaN", "Infinity", "-Infinity", "nan",
                   "inf", "-inf", "null", "", "9" * 5000, "0." + "5" * 120, "[" * 5000, "[" * 100_000,
                   '"[[[["', "0", "1", "-45", "true", "{}"]
_MUTATIONS = ["[", "]", "{", "}", '"', "\\", ",", "\n", "\r", "9" * 200, "e999", "\x00", "\ufeff"]


def _assert_valid_or_motion_error(text: str, kind: str) -> None:
    """The loader's contract: a usable Motion or a MotionError, never anything else."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            motion = motion_from_text(text, kind, "fuzz")
        except MotionError as error:
            assert str(error).startswith("fuzz: ") and "\n" not in str(error)[:400]
            return
        assert motion.values.dtype == np.float32 and motion.values.shape == (motion.frame_count, len(motion.channels))
        if "inf" not in text.lower():  # only "no value" (Infinity, inf) may be infinite, never a numeral
            assert not np.isinf(motion.values).any(), text
        fixed, _ = motion.sanitized()
        for column, name in enumerate(fixed.channels):
            ch = CHANNELS[CHANNEL_NAMES.index(name)]
            assert np.all((fixed.values[:, column] >= ch.minimum) & (fixed.values[:, column] <= ch.maximum))


@example(kind="json", values=["[" * 100_000, "0", "0", "0"], cut=None, insert=None)
@example(kind="json", values=["9" * 5000, "0", "0", "0"], cut=None, insert=None)
@example(kind="json", values=["1e308", "-1e308", "NaN", "Infinity"], cut=None, insert=None)
@example(kind="csv", values=["1e308", "nan", "9" * 5000, "-inf"], cut=None, insert=None)
@example(kind="csv", values=["1e999", "-1e999", "NaN", ""], cut=None, insert=None)
@given(
    kind=st.sampled_from(["json", "csv"]),
    values=st.lists(st.one_of(st.sampled_from(_HOSTILE_VALUES), st.floats().map(repr), st.text(max_size=8)),
                    min_size=4, max_size=4),
    cut=st.none() | st.integers(0, 200),
    insert=st.none() | st.tuples(st.integers(0, 200), st.sampled_from(_MUTATIONS)),
)
@settings(derandomize=True, max_examples=300, deadline=None)
def test_hostile_motion_texts_load_as_valid_motion_or_raise_motion_error(kind, values, cut, insert):
    text = (_json_motion_text if kind == "json" else _csv_motion_text)(values)
    if insert is not None:
        at, piece = insert
        text = text[:at] + piece + text[at:]
    if cut is not None:
        text = text[:cut]
    _assert_valid_or_motion_error(text, kind)
