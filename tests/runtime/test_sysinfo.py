"""Machine information on a Jetson: sensors that are offline, power modes without ids, and MAXN advice
only for modules that have a MAXN mode.

The basic parsers are tested in test_bench.py; these tests cover what a Jetson user sees in
``jamsdk bench`` and ``jamsdk doctor`` reports.
"""

from jamsdk.runtime import jetson, sysinfo, tegrastats

# An Orin NX/Nano line: the CV engines' sensors are off and print -256C.
OFFLINE_LINE = (
    "RAM 3012/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [12%@1510,5%@1510] GR3D_FREQ 61%@[1020] "
    "cpu@47.5C soc2@46.1C CV0@-256C soc0@46.5C CV1@-256C gpu@48.6C CV2@-256C tj@48.6C "
    "VDD_IN 7820mW/7100mW")

ORIN_NANO_JP62_CONF = """
< POWER_MODEL ID=0 NAME=15W >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=25W >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=2 NAME=MAXN_SUPER >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=3 NAME=7W >
< PM_CONFIG DEFAULT=0 >
"""
ORIN_NANO_JP61_CONF = """
< POWER_MODEL ID=0 NAME=15W >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=7W >
< PM_CONFIG DEFAULT=0 >
"""


def test_offline_sensor_is_not_a_temperature():
    sample = tegrastats.parse_tegrastats(OFFLINE_LINE)
    assert sample["temperature_c"] == {"cpu": 47.5, "soc2": 46.1, "soc0": 46.5, "gpu": 48.6, "tj": 48.6}
    assert sample["temperature_offline"] == ["CV0", "CV1", "CV2"]
    summary = tegrastats.summarize_tegrastats([sample, sample])
    assert min(summary["temperature_c_max"].values()) > 0
    assert summary["temperature_offline"] == ["CV0", "CV1", "CV2"]


def test_a_real_negative_temperature_stays():
    # A cold module can read below zero; only the -256C marker means "off".
    sample = tegrastats.parse_tegrastats("RAM 1/2MB cpu@-12.5C gpu@-256C")
    assert sample["temperature_c"] == {"cpu": -12.5} and sample["temperature_offline"] == ["gpu"]


def _jetson(model="NVIDIA Jetson Orin Nano Developer Kit", l4t="36.4.3", mode=None, modes=None, clocks_on=True):
    return {"model": model, "l4t": l4t, "jetpack": None, "nvpmodel": mode, "nvpmodel_modes": modes,
            "jetson_clocks": {"on": clocks_on, "source": "sysfs (min == max frequency)"}, "problems": []}


def test_describe_machine_without_a_mode_id():
    info = {**sysinfo.machine_info(probe_gpu=False), "jetson": _jetson(mode={"name": "15W", "id": None})}
    line = next(line for line in sysinfo.describe_machine(info) if line.startswith("Jetson"))
    assert "power mode 15W;" in line and "None" not in line and "(id" not in line
    info["jetson"]["nvpmodel"] = None
    line = next(line for line in sysinfo.describe_machine(info) if line.startswith("Jetson"))
    assert "power mode unknown;" in line and "None" not in line


def test_parse_nvpmodel_conf():
    assert jetson.parse_nvpmodel_conf(ORIN_NANO_JP62_CONF) == [
        {"id": 0, "name": "15W"}, {"id": 1, "name": "25W"}, {"id": 2, "name": "MAXN_SUPER"}, {"id": 3, "name": "7W"}]
    assert jetson.parse_nvpmodel_conf("garbage") == []


def test_no_maxn_advice_for_an_orin_nano_on_jetpack_61():
    # JetPack 6.1 (L4T 36.4.0): the Orin Nano's modes are 15W (id 0) and 7W; no MAXN.
    at_15w = _jetson(l4t="36.4.0", mode={"name": "15W", "id": 0})
    assert jetson.jetson_advice(at_15w) == []
    at_7w = _jetson(l4t="36.4.0", mode={"name": "7W", "id": 1})
    advice = jetson.jetson_advice(at_7w)
    assert advice[0].startswith("sudo nvpmodel -m 0 ") and "MAXN" not in advice[0].split("#")[0]
    assert "no MAXN mode" in advice[0]
    # The same from the module's own mode list, which wins over the built-in fact.
    from_conf = _jetson(l4t=None, mode={"name": "7W", "id": 1}, modes=jetson.parse_nvpmodel_conf(ORIN_NANO_JP61_CONF))
    assert jetson.jetson_advice(from_conf)[0].startswith("sudo nvpmodel -m 0 ")
    assert jetson.jetson_advice({**from_conf, "nvpmodel": {"name": "15W", "id": 0}}) == []


def test_maxn_super_advice_names_its_id_on_jetpack_62():
    info = _jetson(mode={"name": "15W", "id": 0}, modes=jetson.parse_nvpmodel_conf(ORIN_NANO_JP62_CONF),
                   clocks_on=False)
    advice = jetson.jetson_advice(info)
    assert advice[0].startswith("sudo nvpmodel -m 2 ") and "MAXN_SUPER" in advice[0]
    assert advice[1].startswith("sudo jetson_clocks")
    at_max = {**info, "nvpmodel": {"name": "MAXN_SUPER", "id": 2}, "jetson_clocks": {"on": True}}
    assert jetson.jetson_advice(at_max) == []


def test_unknown_module_gets_generic_advice_without_a_made_up_id():
    info = _jetson(model="NVIDIA Jetson AGX Orin", l4t="36.4.3", mode={"name": "30W", "id": 2})
    advice = jetson.jetson_advice(info)
    assert advice[0].startswith("sudo nvpmodel -m <id")
    assert jetson.jetson_advice({**info, "nvpmodel": {"name": "MAXN", "id": 0}}) == []


def test_jetson_info_reads_nvpmodel_conf(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic\n")
    (tmp_path / "etc/nvpmodel.conf").write_text(ORIN_NANO_JP62_CONF)

    def run(argv):
        return {"dpkg-query": None, "nvpmodel": (0, "NV Power Mode: 15W\n0\n"), "jetson_clocks": None}[argv[0]]

    info = jetson.jetson_info(tmp_path, run)
    assert [m["name"] for m in info["nvpmodel_modes"]] == ["15W", "25W", "MAXN_SUPER", "7W"]
    assert jetson.highest_power_mode(info)[0] == {"id": 2, "name": "MAXN_SUPER"}
