"""Config loading: shipped configs, strict keys and types, errors that name the bad key."""

import pytest

from jamsdk.config import CONFIG_DIR, ModelConfig, first_difference, load_model_config, model_config_from_dict
from jamsdk.errors import ConfigError


def test_shipped_configs_load():
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    assert {"jam-256", "mraa-256", "tiny-jam", "tiny-mraa"} <= set(names)
    for n in names:
        cfg = load_model_config(n)
        assert isinstance(cfg, ModelConfig)
        assert model_config_from_dict(cfg.to_dict()) == cfg  # round trip


def test_config_is_frozen():
    cfg = load_model_config("jam-256")
    with pytest.raises(Exception):
        cfg.num_regions = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "data, match",
    [
        ({"num_regionz": 10}, r"model\.num_regionz: unknown key"),
        ({"generator": {"dilations": "x"}}, r"model\.generator\.dilations\[0\]: expected int, got 'x'"),
        ({"generator": {"res_block": "fancy"}}, r"model\.generator\.res_block: expected one of"),
        ({"generator": {"num_bottleneck_blocks": 6, "dilations": [1, 2]}}, r"model\.generator\.dilations"),
        ({"region_predictor": {"attention": "middle"}}, r"model\.region_predictor\.attention"),
        ({"region_predictor": {"temperature": "hot"}}, r"model\.region_predictor\.temperature: expected float"),
        ({"image_size": 100}, r"model\.image_size: 100 does not fit"),
        ({"num_regions": 0}, r"model\.num_regions: expected a positive value"),
        ({"align_corners": "no"}, r"model\.align_corners: expected true or false"),
        ({"bg_motion": {"bg_type": "sky"}}, r"model\.bg_motion\.bg_type"),
        ({"generator": 3}, r"model\.generator: expected a mapping"),
    ],
)
def test_bad_values_name_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        model_config_from_dict(data)


def test_yaml_file_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model_config(p)
    p.write_text("modle: {}\n")
    with pytest.raises(ConfigError, match="modle: unknown top-level key"):
        load_model_config(p)
    p.write_text("model:\n  generator:\n    skipz: true\n")
    with pytest.raises(ConfigError, match=r"model\.generator\.skipz: unknown key"):
        load_model_config(p)
    with pytest.raises(ConfigError, match="neither a file nor a shipped config"):
        load_model_config("no-such-config")


def test_supported_sizes():
    cfg = load_model_config("jam-256")
    sizes = cfg.supported_sizes(512)
    assert sizes == [128, 256, 384, 512]


def test_first_difference_names_the_first_differing_key_with_both_values():
    a = {"g": {"dilations": [1, 2], "ch": 8}, "k": 10}
    assert first_difference(a, a, "model") is None
    # nested, sorted order: g.ch comes before g.dilations and k
    assert first_difference(a, {"g": {"dilations": [1, 3], "ch": 4}, "k": 9}, "model") == ("model.g.ch", 8, 4)
    # a key on one side only compares as None
    assert first_difference({"x": 1}, {}, "train") == ("train.x", 1, None)
    # a dict against a leaf is a difference at that key, not a walk into it
    assert first_difference({"x": {"y": 1}}, {"x": 1}, "m") == ("m.x", {"y": 1}, 1)
