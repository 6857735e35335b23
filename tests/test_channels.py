"""The channel table and the ARKit conversion."""
import numpy as np
import pytest

from enliven.shared.channels import (
    CHANNEL_INDEX,
    CHANNEL_NAMES,
    CHANNELS,
    GROUPS,
    arkit_to_channels,
    channel,
    default_vector,
    maximum_vector,
    minimum_vector,
)


def test_channel_names_are_unique_and_indexed_in_table_order():
    assert len(set(CHANNEL_NAMES)) == len(CHANNELS)
    assert [CHANNEL_INDEX[name] for name in CHANNEL_NAMES] == list(range(len(CHANNELS)))
    assert CHANNEL_NAMES[:3] == ("head_yaw", "head_pitch", "head_roll")
    # The body's channels came last, so the face's keep their places (raw motion arrays, old files).
    assert CHANNEL_NAMES[16] == "wide"
    assert CHANNEL_NAMES[17:22] == ("breathing", "shrug_l", "shrug_r", "torso_lean", "torso_turn")
    assert CHANNEL_NAMES[22:] == ("lips_part",)  # and channels added since after them


def test_defaults_lie_inside_each_channels_range():
    for ch in CHANNELS:
        assert ch.minimum < ch.maximum, ch.name
        assert ch.minimum <= ch.default <= ch.maximum, ch.name
    assert np.all(minimum_vector() <= default_vector())
    assert np.all(default_vector() <= maximum_vector())
    assert default_vector().dtype == np.float32
    assert default_vector().shape == (len(CHANNELS),)


def test_every_channel_belongs_to_exactly_one_of_the_five_groups():
    assert list(GROUPS) == ["pose", "eyes", "brows", "mouth", "body"]
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(CHANNEL_NAMES)
    assert GROUPS["eyes"] == ("blink_l", "blink_r", "gaze_x", "gaze_y")


def test_every_channel_has_a_description_for_tooltips():
    for ch in CHANNELS:
        assert len(ch.description) > 20, ch.name


def test_channel_lookup_by_name():
    jaw = channel("jaw_open")
    assert (jaw.group, jaw.unit, jaw.minimum, jaw.maximum) == ("mouth", "factor", -1.0, 1.0)


def test_unknown_channel_error_suggests_the_close_name_and_lists_valid_ones():
    with pytest.raises(KeyError) as error:
        channel("jaw_opn")
    message = error.value.args[0]
    assert "'jaw_opn'" in message
    assert "did you mean 'jaw_open'" in message
    assert "head_yaw" in message and "wide" in message


def test_arkit_head_rotation_in_radians_becomes_degrees_and_is_clipped():
    result = arkit_to_channels({"HeadYaw": np.array([0.1, -2.0]), "HeadPitch": np.array([0.2, 0.0])})
    assert result["head_yaw"] == pytest.approx([5.729578, -45.0], abs=1e-4)
    assert result["head_pitch"] == pytest.approx([11.459156, 0.0], abs=1e-4)
    assert result["head_yaw"].dtype == np.float32


def test_arkit_gaze_toward_subjects_left_is_positive_gaze_x():
    # Both eyes looking to the subject's left (the image's right): the left
    # eye looks out, the right eye looks in.
    result = arkit_to_channels({"EyeLookOutLeft": 0.8, "EyeLookInRight": 0.6})
    assert result["gaze_x"] == pytest.approx(0.7)
    toward_subjects_right = arkit_to_channels({"EyeLookInLeft": 1.0, "EyeLookOutRight": 1.0})
    assert toward_subjects_right["gaze_x"] == pytest.approx(-1.0)


def test_arkit_smile_is_positive_and_frown_negative():
    result = arkit_to_channels({"MouthSmileLeft": 0.9, "MouthFrownLeft": 0.2, "MouthFrownRight": 0.5})
    assert result["smile_l"] == pytest.approx(0.7)
    assert result["smile_r"] == pytest.approx(-0.5)


def test_arkit_mixes_and_missing_shapes_count_as_zero():
    result = arkit_to_channels({"MouthPucker": 1.0, "MouthFunnel": 1.0, "MouthStretchLeft": 0.4})
    assert result["pucker"] == pytest.approx(1.0)
    assert result["wide"] == pytest.approx(0.2)
    assert result["jaw_open"] == pytest.approx(0.0)
    # ARKit has no head translation, so those channels are not produced.
    assert "head_x" not in result and "head_y" not in result
