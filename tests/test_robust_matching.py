"""Copies PDQ misses — cropped, turned, framed, mirrored — found by local features, with what
was found; a different picture sharing a logo is not.

Every picture is generated here (gradients, shapes, a few words): benign stand-ins for known
material. The curator's story runs through the real command: a list with local features on,
``lists add-media``, then ``hashwatch match`` of altered copies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from hashwatch.app import Hashwatch
from hashwatch.matching.local_match import LinearLocalIndex, VotingLocalIndex
from hashwatch.matching.match import LocalFacts, Match
from hashwatch.signals.local_features import FeatureSet, describe, describe_query
from hashwatch.signals.robust import rotated, trim_borders
from tests.inprocess_cli import Run, run
from tests.media import scene, write_image

__all__ = ["run"]  # the fixture


def picture(seed: int) -> Image.Image:
    """A gradient with shapes and a line of text."""
    img = scene(seed, (800, 600))
    draw = ImageDraw.Draw(img)
    words = ["harbour", "lantern", "meadow", "copper", "violet", "orchard"]
    draw.text(
        (40, 40 + seed % 200),
        " ".join(words[seed % 3 :]),
        fill=(10, 10, 10),
        font=ImageFont.load_default(size=36),
    )
    return img


def logo(img: Image.Image) -> Image.Image:
    out = img.copy()
    draw = ImageDraw.Draw(out)
    draw.rectangle((660, 520, 780, 580), fill=(250, 250, 250), outline=(0, 0, 0))
    draw.text((670, 535), "NEWS24", fill=(200, 20, 20), font=ImageFont.load_default(size=24))
    return out


def crop(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    return img.crop((int(w * share), int(h * share), w, h))  # off-centre: all from top left


def pad(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * share / 2), int(h * share / 2)
    out = Image.new("RGB", (w + 2 * dx, h + 2 * dy), (0, 0, 0))
    out.paste(img, (dx, dy))
    return out


def mirror(img: Image.Image) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


@pytest.fixture(scope="module")
def refs() -> dict[int, Image.Image]:
    return {n: logo(picture(n)) for n in (1, 2, 3)}


@pytest.fixture(scope="module")
def index(refs: dict[int, Image.Image]) -> VotingLocalIndex:
    out = VotingLocalIndex()
    for n, img in refs.items():
        out.add(n, describe(img))
    return out


def test_cropped_turned_framed_and_mirrored_copies_are_found_with_what_changed(
    refs: dict[int, Image.Image], index: VotingLocalIndex
) -> None:
    original = refs[2]
    found = index.search(describe_query(crop(original, 0.10)))
    assert [m.ref for m in found] == [2]
    x0, y0, x1, y1 = found[0].crop
    assert x0 == pytest.approx(0.10, abs=0.02) and y0 == pytest.approx(0.10, abs=0.02)
    assert x1 == pytest.approx(1.0, abs=0.02) and y1 == pytest.approx(1.0, abs=0.02)
    assert not found[0].mirrored and abs(found[0].angle) < 1

    turned = index.search(describe_query(rotated(original, 5)))
    assert [m.ref for m in turned] == [2]
    assert turned[0].angle == pytest.approx(5, abs=0.7)

    framed = index.search(describe_query(pad(original, 0.10)))
    assert [m.ref for m in framed] == [2]
    assert framed[0].crop == pytest.approx((0, 0, 1, 1), abs=0.02)
    assert framed[0].scale == pytest.approx(1 / 1.1, abs=0.03)

    mirrored = index.search(describe_query(mirror(crop(original, 0.05))))
    assert [m.ref for m in mirrored] == [2] and mirrored[0].mirrored
    assert mirrored[0].crop[0] == pytest.approx(0.05, abs=0.02)  # in the reference's own frame


def test_an_index_of_each_references_strongest_keypoints_finds_the_same_copies(
    refs: dict[int, Image.Image], index: VotingLocalIndex
) -> None:
    """For a million references the index keeps 64-128 descriptors of each (the first in
    ORB's order); verification still uses the whole set."""
    full = {n: describe(img) for n, img in refs.items()}
    for fs in full.values():
        assert len(fs) > 200
    capped = VotingLocalIndex(index_keypoints=64)
    for n, fs in full.items():
        capped.add(n, fs)
    assert capped.descriptor_count == 64 * len(full)
    original = refs[3]
    for copy in (crop(original, 0.10), rotated(original, 5), mirror(pad(original, 0.10))):
        query = describe_query(copy)
        found = capped.search(query)
        assert [m.ref for m in found] == [3]
        assert found == index.search(query)  # verified on all keypoints: the same answer
    assert capped.search(describe_query(logo(picture(7)))) == []
    with pytest.raises(ValueError):
        VotingLocalIndex(index_keypoints=0)


def test_a_different_picture_sharing_the_logo_does_not_match(
    refs: dict[int, Image.Image], index: VotingLocalIndex
) -> None:
    other = logo(picture(7))
    assert index.search(describe_query(other)) == []
    # The logo's keypoints do pair up: the spread of the pairs is what refuses them.
    from hashwatch.matching.local_match import verify

    assert verify(describe(other), describe(refs[1])) is None


def test_the_voting_index_finds_what_the_linear_reference_finds(
    refs: dict[int, Image.Image], index: VotingLocalIndex
) -> None:
    linear = LinearLocalIndex()
    for n, img in refs.items():
        linear.add(n, describe(img))
    for query in (crop(refs[1], 0.05), rotated(refs[3], -3), logo(picture(9))):
        features = describe_query(query)
        assert [m.ref for m in index.search(features)] == [m.ref for m in linear.search(features)]
    index.remove(3)
    assert index.search(describe_query(refs[3])) == []
    index.add(3, describe(refs[3]))


def test_feature_sets_and_match_facts_round_trip() -> None:
    features = describe(picture(4))
    back = FeatureSet.from_bytes(features.to_bytes())
    assert np.array_equal(back.descriptors, features.descriptors)
    assert np.array_equal(back.points, features.points)
    facts = LocalFacts(40, 0.5, 3.0, 0.9, (0.1, 0.0, 1.0, 0.95), True)
    match = Match("l", "known", "local", 0, None, "NONE", None, 1, local=facts)
    assert Match.from_dict(match.as_dict()) == match


def test_border_trim_gives_back_the_framed_picture() -> None:
    img = picture(5)
    trimmed = trim_borders(pad(img, 0.10))
    assert trimmed is not None and abs(trimmed.size[0] - img.size[0]) <= 2
    assert trim_borders(img) is None


def test_the_curators_story_on_the_command_line(run: Run, tmp_path: Path) -> None:
    known = write_image(tmp_path / "known" / "k.png", picture(11), "PNG")
    copies = tmp_path / "seized"
    write_image(copies / "cropped.jpg", crop(picture(11), 0.10), quality=90)
    write_image(copies / "turned.jpg", rotated(picture(11), 5), quality=90)
    write_image(copies / "other.jpg", picture(12), quality=90)

    assert run("lists", "create", "agency").returncode == 0
    setting = run("lists", "set", "agency", "--local-features", "on")
    assert setting.returncode == 0 and "local features on" in setting.stderr
    assert run("lists", "add-media", "agency", str(known)).returncode == 0
    out = run("match", str(copies))
    assert out.returncode == 0, out.stderr
    results = {Path(r["path"]).name: r for r in map(json.loads, out.stdout.splitlines())}
    assert results["other.jpg"]["matches"] == []
    for name, angle in (("cropped.jpg", 0), ("turned.jpg", 5)):
        (found,) = results[name]["matches"]
        assert found["list"] == "agency" and found["hash_type"] == "local"
        assert found["local"]["angle"] == pytest.approx(angle, abs=0.8)
        assert found["local"]["inliers"] >= 15
    assert results["cropped.jpg"]["matches"][0]["local"]["crop"][0] == pytest.approx(0.1, abs=0.02)

    # Off again: the list matches by its hashes only, as before.
    assert run("lists", "set", "agency", "--local-features", "off").returncode == 0
    off = [json.loads(line) for line in run("match", str(copies)).stdout.splitlines()]
    assert all(r["matches"] == [] for r in off)
    # ... unless a run asks for it.
    forced = [
        json.loads(line)
        for line in run("match", "--local-features", str(copies / "turned.jpg")).stdout.splitlines()
    ]
    assert forced[0]["matches"][0]["hash_type"] == "local"


def test_plain_lists_are_unchanged_and_store_no_features(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    from hashwatch.store.local_features import LocalFeatureStore

    known = write_image(tmp_path / "k.png", picture(21), "PNG")
    copy = write_image(tmp_path / "copy.png", picture(21), "PNG")
    cropped = write_image(tmp_path / "crop.jpg", crop(picture(21), 0.10))
    sqlite_hw.add_media("plain", [known])
    assert LocalFeatureStore(sqlite_hw.db).count("plain") == 0
    matcher = sqlite_hw.matcher()
    assert not matcher.wants_local
    by_name = {
        Path(m.signals.path).name: m.result for m in sqlite_hw.match_paths([copy, cropped], matcher)
    }
    assert {m.hash_type for m in by_name["copy.png"].matches} >= {"md5", "pdq"}
    assert all(m.local is None for m in by_name["copy.png"].matches)
    assert by_name["crop.jpg"].matches == []


def test_a_scan_finds_a_cropped_copy_in_a_list_with_local_features(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    known = write_image(tmp_path / "known.png", picture(31), "PNG")
    sqlite_hw.lists.create("agency")
    sqlite_hw.lists.configure("agency", local_features=True)
    sqlite_hw.add_media("agency", [known])
    evidence = tmp_path / "evidence"
    write_image(evidence / "crop.jpg", crop(picture(31), 0.05), quality=90)
    write_image(evidence / "other.jpg", picture(32), quality=90)
    sqlite_hw.scan([evidence], tmp_path / "case", workers=1)
    records = {
        Path(r["path"]).name: r
        for r in map(json.loads, (tmp_path / "case" / "results.jsonl").read_text().splitlines())
    }
    assert [m["hash_type"] for m in records["crop.jpg"]["matches"]] == ["local"]
    assert records["crop.jpg"]["status"] == "known"
    assert records["other.jpg"]["matches"] == []


def test_the_service_matches_an_uploaded_cropped_copy(sqlite_hw: Hashwatch, tmp_path: Path) -> None:
    import io

    from hashwatch.store.service import Role
    from tests.serve_helpers import client, make_key

    known = write_image(tmp_path / "known.png", picture(41), "PNG")
    sqlite_hw.lists.create("agency")
    sqlite_hw.lists.configure("agency", local_features=True)
    sqlite_hw.add_media("agency", [known])
    upload = io.BytesIO()
    rotated(crop(picture(41), 0.05), 3).save(upload, "JPEG", quality=85)
    with client(sqlite_hw) as c:
        r = c.post(
            "/v1/match",
            headers=make_key(sqlite_hw, Role.MATCHER),
            files={"file": ("up.jpg", upload.getvalue(), "image/jpeg")},
        )
    assert r.status_code == 200, r.text
    (found,) = r.json()["matches"]
    assert found["list"] == "agency" and found["hash_type"] == "local"


def test_an_upload_is_decoded_once_for_its_hashes_and_its_local_features(
    sqlite_hw: Hashwatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The features come from the decode the hashes were computed from, inside the decode
    slot, not from a second decode of the upload."""
    import io

    import hashwatch.signals.hasher as hasher
    import hashwatch.signals.image as image
    from hashwatch.store.service import Role
    from tests.serve_helpers import client, make_key

    known = write_image(tmp_path / "known.png", picture(42), "PNG")
    sqlite_hw.lists.create("agency")
    sqlite_hw.lists.configure("agency", local_features=True)
    sqlite_hw.add_media("agency", [known])
    upload = io.BytesIO()
    # Small enough that the hashes' decode is at full size: it serves the features as is.
    crop(picture(42), 0.1).resize((480, 360)).save(upload, "JPEG", quality=85)
    data = upload.getvalue()
    decodes: list[object] = []
    real = image.decode_image

    def counted(source: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(source, bytes | bytearray | memoryview) and bytes(source) == data:
            decodes.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(image, "decode_image", counted)
    monkeypatch.setattr(hasher, "decode_image", counted)
    with client(sqlite_hw) as c:
        r = c.post(
            "/v1/match",
            headers=make_key(sqlite_hw, Role.MATCHER),
            files={"file": ("up.jpg", data, "image/jpeg")},
        )
    assert r.status_code == 200, r.text
    (found,) = r.json()["matches"]
    assert found["list"] == "agency" and found["hash_type"] == "local"
    assert len(decodes) == 1


def test_feature_sets_never_leave_through_exports_or_exchange_feeds() -> None:
    """Feeds and exports select from the entry and hash tables only; the feature table is
    named nowhere in them (a feature set is closer to the picture than a hash)."""
    import hashwatch.exchange
    import hashwatch.store.list_export

    sources = [Path(hashwatch.store.list_export.__file__)]
    sources += sorted(Path(hashwatch.exchange.__path__[0]).glob("*.py"))
    for source in sources:
        text = source.read_text()
        assert "entry_features" not in text and "local_feature" not in text, source.name


def test_a_reviewed_picture_gains_features_and_its_crop_is_then_found(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    from argon2 import PasswordHasher

    from hashwatch.review.consensus import ReviewStore
    from hashwatch.review.votes import Target, VoteChoice
    from hashwatch.store.local_features import LocalFeatureStore
    from hashwatch.store.users import Actor, UserRole, UserStore
    from tests.scanned_case import scan_case

    def evidence(root: Path) -> Path:
        write_image(root / "DCIM" / "harbour.jpg", picture(51), quality=92)
        return root

    _, case_dir = scan_case(tmp_path, evidence, "2026-0417", "reference")
    sqlite_hw.lists.create("agency-known")
    sqlite_hw.lists.configure("agency-known", local_features=True)
    sqlite_hw.cases.import_case(case_dir, consensus_k=1, actor="examiner")
    review = ReviewStore(sqlite_hw.db, sqlite_hw.lists)
    review.configure("2026-0417", actor="lee", scheme="US", known_list="agency-known")
    (item,) = [i for i in sqlite_hw.cases.items("2026-0417") if i.path.endswith("harbour.jpg")]
    users = UserStore(sqlite_hw.db, hasher=PasswordHasher(1, 8 * 1024, 1))  # cheap for tests
    info = users.add("lee", "lead", "lee's long passphrase", actor="setup")
    lead = Actor(0, "lee", UserRole.LEAD, user_id=info.id)
    target = (
        Target(item=item.id) if item.cluster_number is None else Target(cluster=item.cluster_number)
    )
    decision = review.decide("2026-0417", target, VoteChoice("1"), actor=lead)
    assert decision.list_error is None and len(decision.entry_ids) == 1
    assert LocalFeatureStore(sqlite_hw.db).count("agency-known") == 1

    copy = write_image(tmp_path / "copy.jpg", rotated(crop(picture(51), 0.10), 3))
    (found,) = next(iter(sqlite_hw.match_paths([copy], sqlite_hw.matcher()))).result.matches
    assert found.hash_type == "local" and found.entry_id == decision.entry_ids[0]
