"""The flagged-account rules with networkx on the reduced graph.

Fan-in and fan-out are counted in SQL (``scoring``). What needs a graph is left here, and runs
only when the analyst gives known-flagged accounts: the reduced graph holds the red-flagged
relations in scope plus the neighbourhood of the flagged accounts (every relation touching one,
and the other relations of their senders), small however large the input. On it: links to
flagged accounts (paying or paid by one, sharing senders or identifiers with one) and the
communities around flagged accounts (Louvain with a fixed seed, so the same input gives the
same communities).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hashwatch.payments.config import PaymentsConfig
from hashwatch.payments.model import Role

__all__ = ["NetworkHit", "Relation", "network_hits"]


@dataclass(frozen=True, slots=True)
class Relation:
    """One sender -> receiver relation of the reduced graph."""

    sender: str
    receiver: str


@dataclass(frozen=True, slots=True)
class NetworkHit:
    account: str
    role: Role
    rule: str
    detail: str
    counterparties: tuple[str, ...]


def network_hits(
    relations: list[Relation],
    flagged: frozenset[str],
    shared_identifiers: list[tuple[str, str, str]],
    config: PaymentsConfig,
) -> list[NetworkHit]:
    """Account-level hits of the flagged-account rules on the reduced graph.

    ``shared_identifiers`` holds (account, flagged account, identifier kind) for accounts that
    share a device, IP address or receiving account reference with a flagged account.
    """
    import networkx as nx

    hits: list[NetworkHit] = []
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
