"""The typed settings are the one definition of every knob; params.yaml is checked against them."""

import dataclasses

import pytest
import yaml

from conftest import REPO
from posebank.core.errors import ParamsError
from posebank.core.settings import (
    SECTIONS,
    CropParams,
    DetectParams,
    check_dataset_params,
    check_params,
    load_params,
)

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def test_params_yaml_is_valid_and_holds_every_knob():
    from posebank import datasets

    checked = check_params(PARAMS, known_datasets=datasets.names())
    for name, cls in SECTIONS.items():
        assert set(PARAMS[name]) == {f.name for f in dataclasses.fields(cls)}, name
        assert getattr(checked, name) == cls.from_dict(PARAMS[name])
    for name, entry in PARAMS["datasets"].items():
        module = datasets.get(name)
        check_dataset_params(name, entry, module.DEFAULT_PARAMS)
        assert set(entry) == {*module.DEFAULT_PARAMS, "raw", "family"}, name


def test_unknown_wrong_type_and_range_name_the_key():
    with pytest.raises(ParamsError, match=r"^crop\.interpolation: 'bogus' is not one of 'cubic', 'linear'"):
        CropParams.from_dict({"interpolation": "bogus"})
    with pytest.raises(ParamsError, match=r"^crop\.jpeg_quality: 'high' is not an integer"):
        CropParams.from_dict({"jpeg_quality": "high"})
    with pytest.raises(ParamsError, match=r"^crop\.jpeg_quality: must be in 1\.\.100"):
        CropParams.from_dict({"jpeg_quality": 0})
    with pytest.raises(ParamsError, match=r"^detect\.treshold: unknown setting; known: backend"):
        DetectParams.from_dict({"treshold": 0.3})
    with pytest.raises(ParamsError, match=r"^detect\.hog_box_scale: \[1\] is not a list of 2 values"):
        DetectParams.from_dict({"hog_box_scale": [1]})
    with pytest.raises(ParamsError, match=r"^detect\.use_gpu: unknown"):
        DetectParams.from_dict({"use_gpu": True})
    with pytest.raises(ParamsError, match=r"params\.yaml: crop: must be a mapping"):
        check_params({"crop": 3})
    with pytest.raises(ParamsError, match=r"params\.yaml: cropping: unknown section"):
        check_params({"cropping": {}})
    with pytest.raises(ParamsError, match=r"params\.yaml: datasets\.h99: not a registered dataset"):
        check_params({"datasets": {"h99": {}}}, known_datasets=["h36m"])
    # ints are numbers, bools are not
    assert CropParams.from_dict({"context": 2}).context == 2.0
    with pytest.raises(ParamsError, match="is not a number"):
        CropParams.from_dict({"context": True})


def test_dataset_params_follow_the_defaults_types():
    defaults = {"frame_step": 5, "subjects": [1, 2], "correct": True, "cameras": ["a"], "empty": []}
    assert check_dataset_params("d", {"raw": "x", "family": "d", "frame_step": 2}, defaults)["frame_step"] == 2
    for given, key in (({"frame_step": 2.5}, "frame_step"), ({"subjects": ["1"]}, r"subjects\[0\]"),
                       ({"correct": "yes"}, "correct"), ({"cameras": [1]}, r"cameras\[0\]"), ({"nope": 1}, "nope")):
        with pytest.raises(ParamsError, match=rf"^datasets\.d\.{key}"):
            check_dataset_params("d", given, defaults)
    assert check_dataset_params("d", {"empty": [3]}, defaults)["empty"] == [3]


def test_load_params_errors(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "none.yaml")
    assert load_params(tmp_path / "none.yaml", required=False) == {}
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(ParamsError, match=r"bad\.yaml: malformed YAML at line 2"):
        load_params(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ParamsError, match="mapping of sections"):
        load_params(tmp_path / "list.yaml")


def test_detect_overrides_per_dataset():
    d = DetectParams.from_dict({"expansion": 1.15, "per_dataset": {"tdhp": {"rule": "hull", "expansion": 1.05},
                                                                    "mupots": {"max_area_ratio": None}}})
    assert d.for_dataset("tdhp").rule == "hull" and d.for_dataset("tdhp").expansion == 1.05
    assert d.for_dataset("h36m").expansion == 1.15 and d.for_dataset("h36m").rule == "match"
    assert d.for_dataset("mupots").max_area_ratio is None and d.for_dataset("tdhp").per_dataset == {}
    with pytest.raises(ParamsError, match=r"^detect\.per_dataset\.tdhp\.rule: 'bogus' is not one of"):
        DetectParams.from_dict({"per_dataset": {"tdhp": {"rule": "bogus"}}})
    with pytest.raises(ParamsError, match=r"^detect\.per_dataset\.tdhp\.expansion: must be positive"):
        DetectParams.from_dict({"per_dataset": {"tdhp": {"expansion": -1}}})
    with pytest.raises(ParamsError, match=r"^detect\.per_dataset\.tdhp\.rules: unknown setting"):
        DetectParams.from_dict({"per_dataset": {"tdhp": {"rules": "hull"}}})


def test_merge_entries_are_checked_by_key():
    import pytest

    from posebank.core.errors import ParamsError
    from posebank.core.settings import check_params

    good = {"sources": [{"dataset": "surreal", "splits": {"train": "train"}},
                        {"dataset": "mupots", "suffix": "3dhp", "splits": {"val": "val"}, "joints_as": "muco_3dhp"}],
            "sampler": {"kind": "round_robin", "counts": {"surreal": 2}}}
    p = check_params({"merges": {"m": good}})
    m = p.merge("m")
    assert m.datasets == ["surreal", "mupots"] and m.sources[1].joints_as == "muco_3dhp" and m.filter == "none"
    assert m.plausibility.exempt == ["surreal"] and m.plausibility.min_joints_in_box == 4
    cases = [
        ({"sources": []}, "merges.m.sources"),
        ({"sources": [{"dataset": "surreal", "splits": {"training": "train"}}]}, "merges.m.sources[0].splits.training"),
        ({"sources": [{"dataset": "surreal", "splits": {"train": "dev"}}]}, "merges.m.sources[0].splits.train"),
        ({"sources": [{"dataset": "surreal", "splits": {"train": "train"}, "suffix": "H 36"}]},
         "merges.m.sources[0].suffix"),
        ({**good, "sources": good["sources"] + [good["sources"][0]]}, "merges.m.sources[2].dataset"),
        ({**good, "sampler": {"kind": "round_robin", "counts": {"h36m": 3}}}, "merges.m.sampler.counts.h36m"),
        ({**good, "filter": "strict"}, "merges.m.filter"),
        ({**good, "plausibility": {"rel_big": 0.5}}, "merges.m.plausibility.rel_big"),
        ({**good, "colour": 1}, "merges.m.colour"),
    ]
    for entry, where in cases:
        with pytest.raises(ParamsError) as e:
            check_params({"merges": {"m": entry}})
        assert e.value.where.endswith(where), (where, e.value.where, e.value.problem)
    with pytest.raises(ParamsError, match="no merge named 'x'"):
        p.merge("x")
