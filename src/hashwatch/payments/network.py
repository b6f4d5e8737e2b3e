"""Network features with networkx on the reduced graph.

The reduced graph holds only the relations on which at least one relation rule fired, plus
every relation touching a known-flagged account: small enough for a graph library however large
the input. On it: fan-in (many senders from several countries paying one receiver), fan-out (one
sender paying several receivers within a window), links to flagged accounts (paying or paid by
one, sharing senders or identifiers with one) and the communities around flagged accounts
(Louvain with a fixed seed, so the same input gives the same communities).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from hashwatch.payments.config import PaymentsConfig
from hashwatch.payments.model import Role

__all__ = ["NetworkHit", "Relation", "network_hits"]


@dataclass(frozen=True, slots=True)
class Relation:
    """One sender -> receiver relation of the reduced graph, with the relation rules it fired."""

    sender: str
    receiver: str
    n: int
    t0: float
    t1: float
    sender_country: str | None
    receiver_country: str | None
    eur_total: float
    rules: frozenset[str]


@dataclass(frozen=True, slots=True)
class NetworkHit:
    account: str
    role: Role
    rule: str
    detail: str
    counterparties: tuple[str, ...]


def _fan_in(relations: list[Relation], config: PaymentsConfig) -> Iterable[NetworkHit]:
    rule = config.rule("fan_in")
    senders: dict[str, set[str]] = defaultdict(set)
    countries: dict[str, set[str]] = defaultdict(set)
    for rel in relations:
        if not rel.rules:
            continue
        senders[rel.receiver].add(rel.sender)
        if rel.sender_country:
            countries[rel.receiver].add(rel.sender_country)
    for receiver in sorted(senders):
        many, spread = len(senders[receiver]), len(countries[receiver])
        if many >= rule.number("min_senders") and spread >= rule.number("min_countries"):
            yield NetworkHit(
                receiver,
                "receiver",
                "fan_in",
                f"{many} senders from {spread} countries ({', '.join(sorted(countries[receiver]))})"
                " paid this receiver with red flags on their payments",
                tuple(sorted(senders[receiver])),
            )


def _fan_out(relations: list[Relation], config: PaymentsConfig) -> Iterable[NetworkHit]:
    rule = config.rule("fan_out")
    window = rule.number("window_days") * 86400.0
    need = int(rule.number("min_receivers"))
    firsts: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for rel in relations:
        if rel.rules:
            firsts[rel.sender].append((rel.t0, rel.receiver))
    for sender in sorted(firsts):
        starts = sorted(firsts[sender])
        best: list[str] = []
        lo = 0
        for hi in range(len(starts)):
            while starts[hi][0] - starts[lo][0] > window:
                lo += 1
            if hi - lo + 1 > len(best):
                best = [receiver for _, receiver in starts[lo : hi + 1]]
        if len(best) >= need:
            yield NetworkHit(
                sender,
                "sender",
                "fan_out",
                f"began paying {len(best)} receivers within {rule.number('window_days'):g} days",
                tuple(sorted(best)),
            )


def network_hits(
    relations: list[Relation],
    flagged: frozenset[str],
    shared_identifiers: list[tuple[str, str, str]],
    config: PaymentsConfig,
) -> list[NetworkHit]:
    """Account-level hits of the network rules on the reduced graph.

    ``shared_identifiers`` holds (account, flagged account, identifier kind) for accounts that
    share a device, IP address or receiving account reference with a flagged account.
    """
    import networkx as nx

    hits: list[NetworkHit] = [*_fan_in(relations, config), *_fan_out(relations, config)]
    if not flagged:
        return hits
    link = config.rule("flagged_link")
    linked: dict[tuple[str, Role], dict[str, str]] = defaultdict(dict)
    senders_of: dict[str, set[str]] = defaultdict(set)
    for rel in relations:
        senders_of[rel.receiver].add(rel.sender)
        if rel.receiver in flagged and rel.sender not in flagged:
            linked[(rel.sender, "sender")][rel.receiver] = "pays the flagged account"
        if rel.sender in flagged and rel.receiver not in flagged:
            linked[(rel.receiver, "receiver")][rel.sender] = "is paid by the flagged account"
    need = int(link.number("min_shared_senders"))
    flagged_receivers = [r for r in sorted(senders_of) if r in flagged]
    for receiver in sorted(senders_of):
        if receiver in flagged:
            continue
        for other in flagged_receivers:
            shared = senders_of[receiver] & senders_of[other]
            if len(shared) >= need:
                linked[(receiver, "receiver")][other] = f"shares {len(shared)} senders with"
    for account, other, kind in shared_identifiers:
        if account not in flagged:
            role: Role = "sender" if kind in ("device", "IP address") else "receiver"
            linked[(account, role)][other] = f"shares a {kind} with"
    for (account, role), others in sorted(linked.items()):
        words = "; ".join(f"{how} {other}" for other, how in sorted(others.items()))
        hits.append(NetworkHit(account, role, "flagged_link", words, tuple(sorted(others))))
    graph = nx.Graph()
    graph.add_edges_from((rel.sender, rel.receiver) for rel in relations)
    already = {account for account, _ in linked}
    roles: dict[str, Role] = {}
    for rel in relations:
        roles.setdefault(rel.sender, "sender")
        roles.setdefault(rel.receiver, "receiver")
    seed = int(config.rule("flagged_community").number("seed"))
    for component in nx.connected_components(graph):
        seeds = component & flagged
        if not seeds:
            continue
        sub = graph.subgraph(component)
        for community in nx.community.louvain_communities(sub, seed=seed):
            around = sorted(community & flagged)
            if not around:
                continue
            for account in sorted(community - flagged - already):
                hits.append(
                    NetworkHit(
                        account,
                        roles[account],
                        "flagged_community",
                        f"in one community ({len(community)} accounts) with flagged "
                        f"{', '.join(around)}",
                        tuple(around),
                    )
                )
    return hits
