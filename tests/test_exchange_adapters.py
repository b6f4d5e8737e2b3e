"""The adapters for the exchanges that exist today, each against a loopback server answering
in its documented format (tests/exchange_peers.py): what maps to what, what is kept out and
counted, deletions, paging and resuming, staleness, and feedback as each peer takes it."""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from hashwatch.errors import ExchangeError
from hashwatch.exchange.base import Opinion, PeerConfig, RemoteEntry, SharedHash, exchange_of
from hashwatch.exchange.ncmec import NCMECExchange
from hashwatch.exchange.stopncii import StopNCIICheckpoint, StopNCIIExchange
from hashwatch.exchange.threatexchange import ThreatExchangeExchange
from tests.exchange_peers import (
    NCMEC_REASONS,
    TE_TOKEN,
    NCMECPeer,
    StopNCIIPeer,
    ThreatExchangePeer,
    md5_of,
    open_peer,
    pdq_of,
)
from tests.test_exchange_contract import drain


@pytest.fixture
def ncmec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NCMECPeer]:
    yield from open_peer("ncmec", tmp_path, monkeypatch)


@pytest.fixture
def stopncii(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StopNCIIPeer]:
    yield from open_peer("stopncii", tmp_path, monkeypatch)


@pytest.fixture
def te(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreatExchangePeer]:
    yield from open_peer("threatexchange", tmp_path, monkeypatch)


# -- NCMEC ---------------------------------------------------------------------------------


def test_ncmec_maps_known_fingerprints_keeps_classification_raw_and_counts_the_rest(
    ncmec: NCMECPeer,
) -> None:
    ncmec.put(1, classification="B2", extra={"pdna": "aa" * 72, "netclean": "ff" * 20})
    ncmec.put(2, extra={"md5": "not-a-digest"})
    only_pdna = ncmec.put(3)
    ncmec.entries["image3"]["fps"] = {"pdna": "bb" * 72}
    exchange = NCMECExchange(ncmec.config)
    got = dict(drain(exchange.fetch_iter(None))[0])
    one = got[ncmec.key(1)]
    assert one is not None and one.category == "B2" and one.scheme == "NCMEC"
    assert {h.hash_type for h in one.hashes} == {"md5", "sha1", "pdq"}
    assert one.fields["unmapped_types"] == ["NETCLEAN", "PDNA"]
    two = got[ncmec.key(2)]
    assert two is not None and {h.hash_type for h in two.hashes} == {"sha1", "pdq"}
    assert got[only_pdna] is None  # nothing here could match it
    assert exchange.unmapped == {"PDNA": 2, "NETCLEAN": 1, "MD5": 1}


def test_ncmec_pages_resume_mid_range_and_an_expired_paging_url_rereads_the_range(
    ncmec: NCMECPeer,
) -> None:
    keys = [ncmec.put(i) for i in range(5)]
    pages = NCMECExchange(ncmec.config).fetch_iter(None)
    assert isinstance(pages, Generator)
    first = next(pages)
    assert list(first.updates) == keys[:2]
    assert first.checkpoint.paging_url and first.checkpoint.since == 0
    saved = first.checkpoint.to_json()
    pages.close()  # the sync stops here; later it resumes from the saved checkpoint

    resumed = NCMECExchange.checkpoint_from_json(saved)
    rest, done = drain(NCMECExchange(ncmec.config).fetch_iter(resumed))
    assert [k for k, _ in rest] == keys[2:]
    assert done.paging_url is None and done.since == ncmec.now - 5

    ncmec.now += 12 * 3600 + 1  # NCMEC honours a paging URL for 12 hours (pytx)
    expired = NCMECExchange.checkpoint_from_json(saved)
    assert not expired.is_stale()  # the range is read again, no full re-fetch
    again, _ = drain(NCMECExchange(ncmec.config).fetch_iter(expired))
    assert [k for k, _ in again] == keys


def test_ncmec_deletions_and_member_filter(ncmec: NCMECPeer) -> None:
    ncmec.put(0)
    ncmec.delete(0)
    got = dict(drain(NCMECExchange(ncmec.config).fetch_iter(None))[0])
    assert got == {ncmec.key(0): None}
    other = PeerConfig("ncmec", ncmec.config.url, ncmec.config.token, options={"members": "7"})
    ncmec.put(1)
    assert drain(NCMECExchange(other).fetch_iter(None))[0] == []


def test_ncmec_feedback_affirmative_and_negative_with_reason(ncmec: NCMECPeer) -> None:
    ncmec.put(1)
    exchange = NCMECExchange(ncmec.config)
    entry = dict(drain(exchange.fetch_iter(None))[0])[ncmec.key(1)]
    assert entry is not None
    exchange.report_opinion(entry, Opinion.CONFIRMED)
    assert sorted(f[1] for f in ncmec.feedback if f[2] == "affirmative") == ["MD5", "PDQ", "SHA1"]

    with pytest.raises(ExchangeError, match="Not CSAM, Wrong classification"):
        exchange.report_opinion(entry, Opinion.FALSE_POSITIVE)  # two reasons: pick one
    exchange.report_opinion(entry, Opinion.FALSE_POSITIVE, "wrong classification")
    guids = {f[3] for f in ncmec.feedback if f[2] == "negative"}
    assert guids == {"01234567-abcd-0123-4567-012345678901"}
    assert NCMEC_REASONS["01234567-abcd-0123-4567-012345678901"] == "Wrong classification"
    with pytest.raises(ExchangeError, match="affirmative or negative"):
        exchange.report_opinion(entry, Opinion.SEEN)


def test_ncmec_refused_credentials_are_an_exchange_error_without_the_password(
    ncmec: NCMECPeer,
) -> None:
    wrong = PeerConfig("ncmec", ncmec.config.url, "user:hunter2")
    with pytest.raises(ExchangeError, match="HTTP 401") as info:
        drain(NCMECExchange(wrong).fetch_iter(None))
    assert "hunter2" not in str(info.value)
    with pytest.raises(ExchangeError, match="user:password"):
        NCMECExchange(PeerConfig("ncmec", ncmec.config.url, "no-colon"))


# -- StopNCII ------------------------------------------------------------------------------


def test_stopncii_purges_withdrawn_and_deleted_and_counts_unmapped_types(
    stopncii: StopNCIIPeer,
) -> None:
    for i in range(4):
        stopncii.put(i)
    stopncii.record("VideoTMK", "ab" * 100, "Active")
    stopncii.record("Text", "some words", "Active")
    stopncii.record("VideoMD5", md5_of(9), "Received", feedback=["Blocked"])
    exchange = StopNCIIExchange(stopncii.config)
    updates, checkpoint = drain(exchange.fetch_iter(None))
    got = dict(updates)
    assert len(got) == 5
    video = got[f"stopncii:VideoMD5:{md5_of(9)}"]
    assert video is not None and video.hashes == (SharedHash("md5", md5_of(9)),)
    assert video.fields["csp_feedback"] == ["Blocked"] and video.category is None
    assert exchange.unmapped == {"VideoTMK": 1, "Text": 1}

    stopncii.delete(0)  # Withdrawn
    stopncii.delete(1)  # Deleted
    later = dict(drain(exchange.fetch_iter(checkpoint))[0])
    assert later == {stopncii.key(0): None, stopncii.key(1): None}


def test_stopncii_checkpoint_is_stale_after_30_days() -> None:
    import time

    assert not StopNCIICheckpoint(10, int(time.time()) - 29 * 86400).is_stale()
    assert StopNCIICheckpoint(10, int(time.time()) - 31 * 86400).is_stale()


def test_stopncii_feedback(stopncii: StopNCIIPeer) -> None:
    stopncii.put(1)
    exchange = StopNCIIExchange(stopncii.config)
    entry = dict(drain(exchange.fetch_iter(None))[0])[stopncii.key(1)]
    assert entry is not None
    exchange.report_opinion(entry, Opinion.FALSE_POSITIVE, "a cartoon")
    exchange.report_opinion(entry, Opinion.SEEN)
    values = [(fb["feedbackValue"], sorted(fb["tags"])) for fb in stopncii.feedback]
    assert values == [("NotBlocked", ["a cartoon", "false_positive"]), ("PendingReview", ["seen"])]
    no_key = PeerConfig("s", stopncii.config.url, stopncii.config.token)
    with pytest.raises(ExchangeError, match="feedback_key"):
        StopNCIIExchange(no_key).report_opinion(entry, Opinion.CONFIRMED)


# -- ThreatExchange --------------------------------------------------------------------------


def test_threatexchange_updates_deletions_disputes_and_unmapped(te: ThreatExchangePeer) -> None:
    te.put(1)
    te.put(2, more=[{"id": "8000", "owner": {"id": "222"}, "status": "NON_MALICIOUS", "tags": []}])
    te.update(
        "9100",
        {
            "indicator": "https://example.org/",
            "type": "URI",
            "should_delete": False,
            "descriptors": {"data": []},
        },
    )
    exchange = ThreatExchangeExchange(te.config)
    updates, checkpoint = drain(exchange.fetch_iter(None))
    got = dict(updates)
    one, two = got[te.key(1)], got[te.key(2)]
    assert one is not None and one.hashes == (SharedHash("pdq", pdq_of(1)),)
    assert one.fields["tags"] == ["media_type_photo"] and not one.disputed
    assert two is not None and two.disputed and two.provenance["owners"] == [111, 222]
    assert exchange.unmapped == {"URI": 1}

    te.delete(1)
    assert dict(drain(exchange.fetch_iter(checkpoint))[0]) == {te.key(1): None}


def test_threatexchange_resume_within_the_same_second(te: ThreatExchangePeer) -> None:
    """start_time is inclusive: what the checkpoint's last second held comes again and is
    skipped; a new or changed update in that same second is not."""
    te.put(0)
    te.put(1)
    _, checkpoint = drain(ThreatExchangeExchange(te.config).fetch_iter(None))
    saved = checkpoint.to_json()
    te.put(2)
    te.updates["9002"]["last_updated"] = checkpoint.update_time
    resumed = ThreatExchangeExchange.checkpoint_from_json(saved)
    later, checkpoint = drain(ThreatExchangeExchange(te.config).fetch_iter(resumed))
    assert [k for k, _ in later] == [te.key(2)]  # not entry 1 again

    te.put(1, status="NON_MALICIOUS")
    te.updates["9001"]["last_updated"] = checkpoint.update_time
    changed, _ = drain(ThreatExchangeExchange(te.config).fetch_iter(checkpoint))
    assert [k for k, _ in changed] == [te.key(1)]


def test_threatexchange_reactions_and_the_token_stays_out_of_errors(te: ThreatExchangePeer) -> None:
    te.put(1)
    exchange = ThreatExchangeExchange(te.config)
    entry = dict(drain(exchange.fetch_iter(None))[0])[te.key(1)]
    assert entry is not None
    for opinion in Opinion:
        exchange.report_opinion(entry, opinion)
    assert [r for _, r in te.reactions] == [
        "HELPFUL",
        "NOT_HELPFUL",
        "DISAGREE_WITH_TAGS",
        "SAW_THIS_TOO",
    ]
    bare = RemoteEntry(key=te.key(1), hashes=entry.hashes)  # descriptors looked up
    exchange.report_opinion(bare, Opinion.SEEN)
    assert te.reactions[-1] == ("7001", "SAW_THIS_TOO")

    wrong = PeerConfig("te", te.config.url, TE_TOKEN + "x", remote_list=te.group)
    with pytest.raises(ExchangeError, match="HTTP 400") as info:
        drain(ThreatExchangeExchange(wrong).fetch_iter(None))
    assert TE_TOKEN not in str(info.value)


# -- the file exchange and the optional extra ------------------------------------------------


def test_file_exchange_reads_bare_values_and_counts_what_it_cannot_use(tmp_path: Path) -> None:
    path = tmp_path / "pdq.txt"
    path.write_text(f"{pdq_of(1)}\nnot-a-hash\n\n{pdq_of(2)}\n")
    exchange = exchange_of("file")(PeerConfig("f", path.as_uri(), options={"signal_type": "pdq"}))
    got = dict(drain(exchange.fetch_iter(None))[0])
    assert sorted(got) == sorted([f"pdq:{pdq_of(1)}", f"pdq:{pdq_of(2)}"])
    assert exchange.unmapped == {"pdq": 1}  # type: ignore[attr-defined]
    entry = got[f"pdq:{pdq_of(1)}"]
    assert entry is not None
    with pytest.raises(ExchangeError, match="confirmed signals only"):
        exchange.report_opinion(entry, Opinion.FALSE_POSITIVE)
    with pytest.raises(ExchangeError, match="cannot read"):
        drain(exchange_of("file")(PeerConfig("f", str(tmp_path / "gone.txt"))).fetch_iter(None))


@pytest.mark.parametrize("kind", ["ncmec", "stopncii", "threatexchange"])
def test_without_the_extra_the_adapters_say_how_to_install_it(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name == "threatexchange" or name.startswith("threatexchange."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "threatexchange", None)
    config = PeerConfig("p", "http://127.0.0.1:9", "a:b,c", remote_list="1")
    with pytest.raises(ExchangeError, match=r"pip install 'hashwatch\[exchange\]'"):
        exchange_of(kind)(config)
