"""Tests of jwpipe.associations and ``jwpipe asn``."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from jwpipe.associations import (
    Association,
    asn_from_list,
    load_asn,
    member_root,
    parse_asn,
    write_asn,
)
from jwpipe.cli import asn as asn_cli
from jwpipe.cli.main import main as jwpipe_main
from jwpipe.errors import AssociationError

ASN_DIR = Path(__file__).parent.parent / "data" / "asn"
#: The imaging associations (the other types are tested in test_asn_types.py).
REAL_FILES = sorted([*ASN_DIR.glob("jw*_image[23]_*_asn.json"), ASN_DIR / "asn_level2.json"])


def _minimal() -> dict:
    return {
        "asn_type": "image3",
        "asn_rule": "Asn_Lv3Image",
        "asn_id": "a3001",
        "program": "01234",
        "target": "t001",
        "asn_pool": "pool",
        "products": [
            {
                "name": "jw01234-a3001_t001_nircam_clear-f200w",
                "members": [
                    {"expname": "a_cal.fits", "exptype": "science"},
                    {"expname": "b_cal.fits", "exptype": "SCIENCE"},
                ],
            }
        ],
    }


def _write(tmp_path: Path, data: object, name: str = "x_asn.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# ----------------------------------------------------------------------------- real files


def test_real_files_present():
    assert len(REAL_FILES) == 8


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_every_real_file_loads_and_round_trips(path):
    asn = load_asn(path)
    raw = json.loads(path.read_text())
    assert asn.to_dict() == raw
    assert asn.asn_type == raw["asn_type"]
    assert asn.level == (2 if raw["asn_type"] == "image2" else 3)
    for product, raw_product in zip(asn.products, raw["products"], strict=True):
        assert product.name == raw_product["name"]
        assert [m.expname for m in product.members] == [
            m["expname"] for m in raw_product["members"]
        ]
        for member in product.members:
            assert member.path.is_absolute()
            assert member.path == ASN_DIR.absolute() / member.expname
        assert product.science


def test_real_image3_contents():
    asn = load_asn(ASN_DIR / "jw82600_20180921T023255_pool-a3001_image3_001_asn.json")
    assert asn.asn_id == "a3001"
    assert asn.program == "82600"
    assert asn.target == "t001"
    assert asn.asn_pool == "jw82600_20180921T023255_pool"
    assert asn.asn_rule == "discover_Asn_Image"
    assert asn.version_id is None and "version_id" in asn.to_dict()
    (product,) = asn.products
    assert product.name == "jw82600-a3001_t001_nircam_f187n"
    assert len(product.science) == 8
    assert product.members[0].exposerr == "null"
    assert product.members[0].asn_candidate == "[('o020', 'observation')]"


def test_real_level2_with_background():
    asn = load_asn(ASN_DIR / "asn_level2.json")
    assert asn.asn_id is None and asn.target is None
    assert len(asn.products) == 6
    lrs3 = next(p for p in asn.products if p.name == "test_lrs3_rate")
    assert [m.expname for m in lrs3.science] == ["test_lrs3_rate.fits"]
    assert [m.expname for m in lrs3.background] == ["test_lrs3bkg_rate.fits"]
    # the same file is science in one product and background in another: allowed
    assert len(asn.science_paths()) == 6
    assert len(asn.missing_members()) == 6


# ----------------------------------------------------------------------------- errors


def test_invalid_json(tmp_path):
    path = _write(tmp_path, '{"products": [,]}')
    with pytest.raises(AssociationError, match=r"x_asn\.json: invalid JSON at line 1"):
        load_asn(path)


def test_missing_file(tmp_path):
    with pytest.raises(AssociationError, match="not found"):
        load_asn(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("products"), "missing required key 'products'"),
        (lambda d: d.update(products=[]), "'products' must be a non-empty list"),
        (lambda d: d.update(products={"a": 1}), "'products' must be a non-empty list"),
        (lambda d: d["products"][0].pop("members"), "missing required key 'members'"),
        (lambda d: d["products"][0].pop("name"), "missing required key 'name'"),
        (lambda d: d["products"][0]["members"][0].pop("expname"), "required key 'expname'"),
        (lambda d: d["products"][0]["members"][1].pop("exptype"), "required key 'exptype'"),
        (lambda d: d["products"][0]["members"][0].update(expname=3), "non-empty string"),
        (lambda d: d["products"][0]["members"][0].update(exptype=["x"]), "must be a string"),
        (lambda d: d.update(asn_type=2), "'asn_type' must be a string"),
        (lambda d: d["products"][0]["members"].append("a.fits"), "must be a JSON object"),
        (lambda d: d["products"][0]["members"][0].update(exptype="sience"), "unknown exptype"),
        (
            lambda d: d["products"][0]["members"][1].update(expname="a_cal.fits"),
            "duplicate member 'a_cal.fits'",
        ),
        (
            lambda d: d["products"][0]["members"][1].update(expname="./a_cal.fits"),
            "duplicate member",
        ),
        (
            lambda d: [m.update(exptype="background") for m in d["products"][0]["members"]],
            "no 'science' member",
        ),
        (lambda d: d["products"].append(copy.deepcopy(d["products"][0])), "duplicate product"),
    ],
)
def test_schema_violations(tmp_path, mutate, message):
    data = _minimal()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(AssociationError, match=message) as info:
        load_asn(path)
    assert str(path) in str(info.value)


def test_top_level_not_object(tmp_path):
    with pytest.raises(AssociationError, match="must be a JSON object"):
        load_asn(_write(tmp_path, [1, 2]))


@pytest.mark.parametrize(
    "name",
    [
        "../a_cal.fits",
        "sub/../../a_cal.fits",
        "/etc/passwd",
        "C:evil.fits",
        'x"; rm -rf ~ #_cal.fits',
        "a b_cal.fits",
        "a$(id)_cal.fits",
        "a\\b_cal.fits",
        "-rf_cal.fits",
        "sub//a_cal.fits",
        "a_cal.fits\n",
        "caf\u00e9_cal.fits",
    ],
)
def test_unsafe_member_names_refused(tmp_path, name):
    data = _minimal()
    data["products"][0]["members"][0]["expname"] = name
    with pytest.raises(AssociationError, match="member"):
        load_asn(_write(tmp_path, data))
    with pytest.raises(AssociationError):
        asn_from_list([name], "prod")


@pytest.mark.parametrize("name", ["a/b", "../x", "x y", "-x", "..", 'p"; ls'])
def test_unsafe_product_names_refused(tmp_path, name):
    data = _minimal()
    data["products"][0]["name"] = name
    with pytest.raises(AssociationError, match="product"):
        load_asn(_write(tmp_path, data))


def test_subdirectory_members_allowed(tmp_path):
    data = _minimal()
    data["products"][0]["members"][0]["expname"] = "sub/dir/a_cal.fits"
    asn = load_asn(_write(tmp_path, data))
    assert asn.products[0].members[0].path == tmp_path / "sub" / "dir" / "a_cal.fits"


def test_exptype_case_and_optional_keys(tmp_path):
    data = _minimal()
    data["products"][0]["members"][0].update(exptype="Background", group_id="g1")
    data["products"][0]["members"][1]["tweakreg_catalog"] = "b_cat.ecsv"
    asn = load_asn(_write(tmp_path, data))
    a, b = asn.products[0].members
    assert a.exptype == "background" and a.group_id == "g1"
    assert b.exptype == "science" and b.extra == {"tweakreg_catalog": "b_cat.ecsv"}
    data["products"][0]["members"][1]["tweakreg_catalog"] = "../b_cat.ecsv"
    with pytest.raises(AssociationError, match="tweakreg_catalog"):
        load_asn(_write(tmp_path, data))


# ----------------------------------------------------------------------------- creation


def test_member_root():
    assert member_root("jw01234001001_02101_00001_nrca1_rate.fits") == (
        "jw01234001001_02101_00001_nrca1"
    )
    assert member_root("sub/x_cal.fits") == "x"
    assert member_root("nosuffix.fits") == "nosuffix"
    assert member_root("a_b_custom.fits") == "a_b_custom"


def test_asn_from_list_image3(tmp_path):
    files = ["a_cal.fits", "b_cal.fits", "c_cal.fits"]
    asn = asn_from_list(files, "myprod", program="01234", asn_id="o001")
    assert asn["asn_type"] == "image3"
    assert asn["program"] == "01234" and asn["asn_id"] == "o001"
    (product,) = asn["products"]
    assert product["name"] == "myprod"
    assert [m["expname"] for m in product["members"]] == files
    assert {m["exptype"] for m in product["members"]} == {"science"}
    out = write_asn(asn, tmp_path / "my_asn.json")
    loaded = load_asn(out)
    assert isinstance(loaded, Association)
    assert loaded.to_dict() == asn
    assert [m.path for m in loaded.products[0].members] == [tmp_path / f for f in files]


def test_asn_from_list_image2():
    files = ["jw1_00001_nrca1_rate.fits", "jw1_00002_nrca1_rate.fits"]
    asn = asn_from_list(files, asn_type="image2")
    assert [p["name"] for p in asn["products"]] == ["jw1_00001_nrca1", "jw1_00002_nrca1"]
    assert all(len(p["members"]) == 1 for p in asn["products"])
    one = asn_from_list(files[:1], "custom", asn_type="image2")
    assert one["products"][0]["name"] == "custom"
    with pytest.raises(AssociationError, match="single member"):
        asn_from_list(files, "custom", asn_type="image2")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([[]], {"product_name": "p"}, "no member files"),
        ([["a.fits", "a.fits"]], {"product_name": "p"}, "duplicate member"),
        ([["a.fits"]], {}, "needs a product name"),
        ([["a.fits"]], {"product_name": "p", "asn_type": "spec9"}, "asn_type"),
        ([["a.fits"]], {"product_name": "p", "exptype": "junk"}, "unknown exptype"),
        ([["a.fits"]], {"product_name": "p", "asn_id": "x/y"}, "asn_id"),
        ([["a_rate.fits", "a_cal.fits"]], {"asn_type": "image2"}, "share the root name"),
    ],
)
def test_asn_from_list_errors(args, kwargs, message):
    with pytest.raises(AssociationError, match=message):
        asn_from_list(*args, **kwargs)


def test_write_asn_validates_first_and_is_atomic(tmp_path):
    target = tmp_path / "a_asn.json"
    target.write_text("old")
    bad = _minimal()
    bad["products"][0]["members"][0]["expname"] = "../escape.fits"
    with pytest.raises(AssociationError, match="leaves the association's directory"):
        write_asn(bad, target)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_asn.json"]
    write_asn(_minimal(), target)
    assert json.loads(target.read_text()) == _minimal()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_asn.json"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_parse_asn_from_dict(tmp_path):
    asn = parse_asn(_minimal(), tmp_path)
    assert asn.source == "<dict>"
    assert asn.products[0].members[1].path == tmp_path / "b_cal.fits"


# ----------------------------------------------------------------------------- CLI


def test_cli_create_and_check(tmp_cwd, capsys):
    for name in ("a_cal.fits", "b_cal.fits"):
        (tmp_cwd / name).write_bytes(b"")
    assert (
        jwpipe_main(
            [
                "asn",
                "create",
                "a_cal.fits",
                "b_cal.fits",
                "-o",
                "out_asn.json",
                "--product",
                "prod",
                "--program",
                "01234",
            ]
        )
        == 0
    )
    asn = load_asn(tmp_cwd / "out_asn.json")
    assert asn.program == "01234" and asn.products[0].name == "prod"
    assert jwpipe_main(["asn", "check", "out_asn.json", "--require-files"]) == 0
    out = capsys.readouterr().out
    assert "OK image3" in out and "2 science" in out
    # refuses to overwrite silently
    assert jwpipe_main(["asn", "create", "a_cal.fits", "-o", "out_asn.json", "--product", "p"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_cli_create_subdir_and_outside(tmp_cwd, capsys):
    (tmp_cwd / "data").mkdir()
    (tmp_cwd / "data" / "x_rate.fits").write_bytes(b"")
    assert (
        asn_cli.main(["create", "data/x_rate.fits", "-o", "l2_asn.json", "--type", "image2"]) == 0
    )
    assert load_asn("l2_asn.json").products[0].members[0].expname == "data/x_rate.fits"
    (tmp_cwd / "data" / "sub").mkdir()
    with pytest.raises(AssociationError, match="not inside the association's directory"):
        asn_cli.main(["create", "data/x_rate.fits", "-o", "data/sub/o_asn.json", "--product", "p"])


def test_cli_check_errors(tmp_cwd, capsys):
    _write(tmp_cwd, "not json", "bad_asn.json")
    assert jwpipe_main(["asn", "check", "bad_asn.json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad_asn.json: invalid JSON" in err
    data = _minimal()
    _write(tmp_cwd, data, "ok_asn.json")
    assert jwpipe_main(["asn", "check", "ok_asn.json"]) == 0
    assert jwpipe_main(["asn", "check", "ok_asn.json", "--require-files"]) == 1
    assert "member file not found" in capsys.readouterr().err


def test_cli_check_real_files(capsys):
    assert asn_cli.main(["check", *map(str, REAL_FILES)]) == 0
    assert capsys.readouterr().out.count(": OK ") == len(REAL_FILES)


def test_level3_name_templates_are_accepted_and_named_like_jwst(tmp_path):
    from jwpipe.associations import parse_asn, product_root

    assert product_root("jw01234-o001_t001_nircam_clear-f200w_{suffix}") == \
        "jw01234-o001_t001_nircam_clear-f200w"
    assert product_root("jw01234-o001_{source_id}_nircam_clear-f200w") == \
        "jw01234-o001_nircam_clear-f200w"
    assert product_root("jw01234-o001_t001_nircam_clear-f200w") == \
        "jw01234-o001_t001_nircam_clear-f200w"
    with pytest.raises(AssociationError, match=r"trailing _\{suffix\} only"):
        product_root("jw01234-o001_t001_nircam_f212n-nrca4_{suffix}-01")
    asn = parse_asn({"asn_type": "image3", "products": [
        {"name": "jw01234-o001_t001_nircam_clear-f200w_{suffix}",
         "members": [{"expname": "a_cal.fits", "exptype": "science"}]}]}, tmp_path)
    assert asn.products[0].name.endswith("_{suffix}")
    with pytest.raises(AssociationError, match="unsafe"):
        parse_asn({"products": [{"name": "x_{other}", "members": [
            {"expname": "a_cal.fits", "exptype": "science"}]}]}, tmp_path)
