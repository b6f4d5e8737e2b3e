"""Reviewing a case: votes, splits, decisions and their list entries, queues.

Every write runs in one transaction under the case's writer lock, with its audit record
(actor: the person). The rule that settles a target is :func:`~.votes.review_state`.

Settling is instant. The decision is committed with the vote that settled it (or the lead's
decision); right after, its items become entries of the case's agency lists through
:meth:`ListStore.add_records` (which runs its own transaction under the list's lock): a
categorised target's items go to the case's ``known`` list, a "not relevant" one's to its
``ignorable`` list, each with every hash of the file and its provenance (case, target,
voters, votes, date). When that step fails (no list chosen for the case, a list of the other
kind) the decision stands and says why in ``list_error`` (audited as
``case.decision.list_failed``) and its list step is pending: the case's next decision,
``hashwatch cases apply`` and ``hashwatch cases set`` retry it
(:meth:`ReviewStore.retry_list_steps`). Revoking a decision revokes its entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from hashwatch.errors import CaseNotFoundError, ConfigError, HashwatchError, ReviewConflictError
from hashwatch.lists.model import CategoryScheme, EntryStatus, ListKind
from hashwatch.review.cases import CaseItem, CaseStore
from hashwatch.review.list_features import add_item_features
from hashwatch.review.list_step import entry_ids_of, pending_ids
from hashwatch.review.rows import (
    QueueEntry,
    TargetView,
    around,
    check_choice,
    choice_of,
    decision_of,
    queue_targets,
    require_cluster,
    target_of,
    vote_of,
    voted_by,
    where_target,
)
from hashwatch.review.votes import (
    Decision,
    ReviewState,
    Target,
    Vote,
    VoteChoice,
    entry_record,
    review_state,
)
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.lists import ListStore
from hashwatch.store.models import (
    CASE_CLUSTERS,
    CASE_DECISIONS,
    CASE_ITEMS,
    CASE_VOTES,
    CASES,
    LISTS,
    utcnow,
)
from hashwatch.store.user_models import UserRole
from hashwatch.store.users import Actor, allowed

__all__ = ["QueueEntry", "ReviewSettings", "ReviewStore", "TargetView", "VoteResult"]

V = CASE_VOTES
D = CASE_DECISIONS
IT = CASE_ITEMS


@dataclass(frozen=True)
class ReviewSettings:
    case_uid: str
    scheme: str | None
    known_list: str | None
    ignorable_list: str | None
    consensus_k: int

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class VoteResult:
    vote: Vote
    state: ReviewState
    decision: Decision | None  # the decision this vote settled, if it did

    def as_json(self) -> dict[str, Any]:
        return {
            "vote": self.vote.as_json(),
            "state": self.state.value,
            "decision": self.decision.as_json() if self.decision else None,
        }


def _person(actor: Actor, need: UserRole) -> str:
    if not actor.is_person or actor.user_id is None:
        raise ConfigError("only a signed-in person (or a person's key) reviews a case")
    if not allowed(actor, need):
        raise ConfigError(f"this needs the {need.value} role")
    return actor.name


class ReviewStore:
    """Votes, splits, decisions and queues of the cases of one database."""

    def __init__(self, db: Database, lists: ListStore) -> None:
        self.db = db
        self.lists = lists
        self._cases = CaseStore(db)

    # -- settings ------------------------------------------------------------------------

    def settings(self, ref: str) -> ReviewSettings:
        with self.db.read() as conn:
            return _settings(self._cases.row_of(conn, ref))

    def configure(
        self,
        ref: str,
        *,
        actor: str,
        scheme: str | None = None,
        known_list: str | None = None,
        ignorable_list: str | None = None,
        consensus_k: int | None = None,
    ) -> ReviewSettings:
        """Set the case's category scheme, agency lists and number of agreeing reviewers
        (what is not given stays). A list that exists must be of the right kind."""
        values: dict[str, Any] = {}
        if scheme is not None:
            try:
                values["scheme"] = CategoryScheme(scheme.upper()).value
            except ValueError:
                names = ", ".join(s.value for s in CategoryScheme)
                raise ConfigError(f"no category scheme {scheme!r} (one of {names})") from None
        for column, name, kind in (
            ("known_list", known_list, ListKind.KNOWN),
            ("ignorable_list", ignorable_list, ListKind.IGNORABLE),
        ):
            if name is not None:
                self._check_list(name, kind)
                values[column] = name
        if consensus_k is not None:
            if not 1 <= consensus_k <= 100:
                raise ConfigError("the number of agreeing reviewers is between 1 and 100")
            values["consensus_k"] = consensus_k
        with self.db.write(lock="cases") as conn:
            row = self._cases.row_of(conn, ref)
            if values:
                conn.execute(update(CASES).where(CASES.c.id == row.id).values(**values))
                record_audit(
                    conn,
                    actor=actor,
                    action="case.settings",
                    target=f"case:{row.case_uid}",
                    details=values,
                )
            return _settings(self._cases.row_of(conn, ref))

    def _check_list(self, name: str, kind: ListKind) -> None:
        with self.db.read() as conn:
            row = conn.execute(select(LISTS.c.kind).where(LISTS.c.name == name)).first()
        if row is not None and row.kind != kind.value:
            raise ConfigError(f"list {name!r} is a {row.kind} list, not {kind.value}")

    # -- votes ---------------------------------------------------------------------------

    def vote(self, ref: str, target: Target, choice: VoteChoice, *, actor: Actor) -> VoteResult:
        """Record ``actor``'s vote on ``target`` (their earlier vote is kept, superseded);
        settles the target when K reviewers now agree."""
        who = _person(actor, UserRole.REVIEWER)
        choice = choice.checked()
        with self.db.write(lock="cases") as conn:
            case = self._cases.row_of(conn, ref)
            choice = check_choice(conn, case, choice)
            self._check_target(conn, case, target)
            if self._active_decision(conn, case.id, target) is not None:
                raise ReviewConflictError(f"{target} is settled: a lead revokes its decision first")
            before = conn.execute(
                select(V).where(
                    and_(
                        where_target(V, case.id, target),
                        V.c.user_id == actor.user_id,
                        V.c.superseded_by.is_(None),
                    )
                )
            ).first()
            new_id = conn.execute(
                insert(V).values(
                    case_id=case.id,
                    cluster_number=target.cluster,
                    item_id=target.item,
                    user_id=actor.user_id,
                    user_name=who,
                    at=utcnow(),
                    **_choice_values(choice),
                )
            ).inserted_primary_key
            assert new_id is not None
            vote_id = int(new_id[0])
            if before is not None:
                conn.execute(update(V).where(V.c.id == before.id).values(superseded_by=vote_id))
            record_audit(
                conn,
                actor=who,
                action="case.vote.changed" if before is not None else "case.vote",
                target=f"case:{case.case_uid}:{target}",
                details={"vote": vote_id, "replaces": before.id if before else None}
                | choice.as_json(),
            )
            state, agreed = self._state(conn, case, target)
            decision_id = None
            if state is ReviewState.SETTLED and agreed is not None:
                votes = self._counting(conn, case.id, target)
                agreeing = [v.id for v in votes if v.choice.agreement == agreed.agreement]
                decision_id = self._insert_decision(
                    conn, case, target, agreed, how="consensus", by=who, votes=agreeing
                )
            self._write_state(conn, case.id, target, state)
            vote = vote_of(conn.execute(select(V).where(V.c.id == vote_id)).one())
        decision = None
        if decision_id is not None:
            decision = self.apply_entries(decision_id, actor=who)
            self.retry_list_steps(ref, actor=who, listed_only=True, skip=decision_id)
        return VoteResult(vote, state, decision)

    def split(self, ref: str, item_id: int, *, actor: Actor) -> TargetView:
        """Take an item out of its cluster: the cluster's votes no longer apply to it and it
        is reviewed on its own."""
        who = _person(actor, UserRole.REVIEWER)
        with self.db.write(lock="cases") as conn:
            case = self._cases.row_of(conn, ref)
            item = self._item_row(conn, case, item_id)
            if item.cluster_number is None or item.split_off:
                raise ReviewConflictError(f"item {item_id} is in no cluster")
            cluster = Target(cluster=int(item.cluster_number))
            if self._active_decision(conn, case.id, cluster) is not None:
                raise ReviewConflictError(f"{cluster} is settled: a lead revokes it first")
            conn.execute(update(IT).where(IT.c.id == item_id).values(split_off=True))
            record_audit(
                conn,
                actor=who,
                action="case.split",
                target=f"case:{case.case_uid}:item:{item_id}",
                details={"cluster": int(item.cluster_number)},
            )
            own = Target(item=item_id)
            self._write_state(conn, case.id, own, self._state(conn, case, own)[0])
        return self.target(ref, own)

    # -- decisions -----------------------------------------------------------------------

    def decide(self, ref: str, target: Target, choice: VoteChoice, *, actor: Actor) -> Decision:
        """A lead settles ``target`` (disputed, or any not yet settled); every vote is kept
        with the decision."""
        who = _person(actor, UserRole.LEAD)
        choice = choice.checked()
        with self.db.write(lock="cases") as conn:
            case = self._cases.row_of(conn, ref)
            choice = check_choice(conn, case, choice)
            self._check_target(conn, case, target)
            if self._active_decision(conn, case.id, target) is not None:
                raise ReviewConflictError(f"{target} is settled already")
            votes = [v.id for v in self._votes(conn, case.id, target) if v.current]
            decision_id = self._insert_decision(
                conn, case, target, choice, how="lead", by=who, votes=votes
            )
            self._write_state(conn, case.id, target, ReviewState.SETTLED)
        decision = self.apply_entries(decision_id, actor=who)
        self.retry_list_steps(ref, actor=who, listed_only=True, skip=decision_id)
        return decision

    def revoke(self, ref: str, decision_id: int, *, actor: Actor, reason: str) -> Decision:
        """A lead revokes a decision and the list entries it created; the target goes back
        to the lead's queue (or settles again when reviewers vote again)."""
        who = _person(actor, UserRole.LEAD)
        reason = (reason or "").strip()
        if not reason:
            raise ConfigError("say why the decision is revoked")
        with self.db.write(lock="cases") as conn:
            case = self._cases.row_of(conn, ref)
            row = conn.execute(
                select(D).where(and_(D.c.id == decision_id, D.c.case_id == case.id))
            ).first()
            if row is None:
                raise CaseNotFoundError(f"case {ref} has no decision {decision_id}")
            if row.revoked_at is not None:
                raise ReviewConflictError(f"decision {decision_id} is revoked already")
            conn.execute(
                update(D)
                .where(D.c.id == decision_id)
                .values(revoked_at=utcnow(), revoked_by=who, revoked_reason=reason)
            )
            target = target_of(row)
            record_audit(
                conn,
                actor=who,
                action="case.decision.revoked",
                target=f"case:{case.case_uid}:{target}",
                details={"decision": decision_id, "reason": reason, "entries": len(row.entry_ids)},
            )
            self._write_state(conn, case.id, target, self._state(conn, case, target)[0])
        if row.list_name and row.entry_ids:
            self.lists.set_status(
                row.list_name,
                entry_ids=row.entry_ids,
                status=EntryStatus.REVOKED,
                actor=who,
                reason=f"case review decision {decision_id} revoked: {reason}",
            )
        return self.decision(decision_id)

    def apply_entries(self, decision_id: int, *, actor: str) -> Decision:
        """Add the items of a standing decision to the case's agency list (see the module);
        on failure the decision records why and is returned as it stands."""
        with self.db.read() as conn:
            row = conn.execute(select(D).where(D.c.id == decision_id)).one()
            case = conn.execute(select(CASES).where(CASES.c.id == row.case_id)).one()
            target = target_of(row)
            items = self._members(conn, case.id, target)
            votes = self._votes(conn, case.id, target)
        if row.revoked_at is not None or row.entry_ids:
            return self.decision(decision_id)
        choice = choice_of(row)
        list_name = case.ignorable_list if choice.not_relevant else case.known_list
        kind = ListKind.IGNORABLE if choice.not_relevant else ListKind.KNOWN
        used = [v for v in votes if v.id in set(row.votes or [])]
        provenance = {
            "case": case.case_uid,
            "case_number": case.case_number,
            "target": str(target),
            "decision": decision_id,
            "how": row.how,
            "decided_by": row.decided_by,
            "voters": sorted({v.user for v in used}),
            "votes": [
                {
                    "user": v.user,
                    "category": v.choice.category,
                    "not_relevant": v.choice.not_relevant,
                    "at": v.at.isoformat(),
                }
                for v in used
            ],
        }
        date = row.decided_at.date().isoformat()
        pairs = [
            (i, r)
            for i in items
            if (r := entry_record(dict(i.digests or {}), choice, provenance, date=date)) is not None
        ]
        records = [r for _, r in pairs]
        error: str | None = None
        entry_ids: list[int] = []
        if list_name is None:
            error = (
                f"the case has no {kind.value} list: choose one with "
                f"'hashwatch cases set {case.case_uid} --{kind.value}-list NAME'"
            )
        elif records:
            try:
                self.lists.add_records(
                    list_name,
                    records,
                    source=f"case review {case.case_uid}",
                    kind=kind,
                    actor=actor,
                )
                entry_ids = entry_ids_of(self.db, self.lists, list_name, records, actor)
            except HashwatchError as exc:
                error = f"not added to list {list_name!r}: {exc}"
            else:
                add_item_features(self.db, self.lists, list_name, pairs, actor=actor)
        with self.db.write(lock="cases") as conn:
            conn.execute(
                update(D)
                .where(D.c.id == decision_id)
                .values(list_name=list_name, entry_ids=entry_ids, list_error=error)
            )
            record_audit(
                conn,
                actor=actor,
                action="case.decision.list_failed" if error else "case.decision.entries",
                target=f"case:{case.case_uid}:{target}",
                details={"decision": decision_id, "list": list_name, "entries": len(entry_ids)}
                | ({"error": error} if error else {}),
            )
        return self.decision(decision_id)

    def retry_list_steps(
        self, ref: str, *, actor: str, listed_only: bool = False, skip: int | None = None
    ) -> list[Decision]:
        """Run the list step again for every standing decision of the case whose step is
        pending (:mod:`~.list_step`), oldest first; ``listed_only``: only those whose list
        the case has chosen (what every new decision does). Returns them as they stand."""
        with self.db.read() as conn:
            ids = pending_ids(conn, self._cases.row_of(conn, ref), listed_only=listed_only)
        return [self.apply_entries(i, actor=actor) for i in ids if i != skip]

    # -- reading -------------------------------------------------------------------------

    def decision(self, decision_id: int) -> Decision:
        with self.db.read() as conn:
            row = conn.execute(select(D).where(D.c.id == decision_id)).first()
            if row is None:
                raise CaseNotFoundError(f"no decision {decision_id}")
            wanted = set(row.votes or [])
            votes = [v for v in self._votes(conn, row.case_id, target_of(row)) if v.id in wanted]
        return decision_of(row, votes)

    def decisions(self, ref: str) -> list[Decision]:
        """Every decision of the case (revoked ones too) with the votes it was made on."""
        with self.db.read() as conn:
            case = self._cases.row_of(conn, ref)
            rows = conn.execute(select(D).where(D.c.case_id == case.id).order_by(D.c.id)).all()
            all_votes = [vote_of(r) for r in conn.execute(select(V).where(V.c.case_id == case.id))]
        out = []
        for row in rows:
            wanted = set(row.votes or [])
            out.append(decision_of(row, [v for v in all_votes if v.id in wanted]))
        return out

    def item(self, ref: str, item_id: int) -> CaseItem:
        """An item of case ``ref`` (:class:`CaseNotFoundError` for another case's)."""
        with self.db.read() as conn:
            case = self._cases.row_of(conn, ref)
            self._item_row(conn, case, item_id)
        return self._cases.item(item_id)

    def target(self, ref: str, target: Target) -> TargetView:
        with self.db.read() as conn:
            case = self._cases.row_of(conn, ref)
            self._check_target(conn, case, target, own=False)
            state = self._stored_state(conn, case.id, target)
            items = [int(i.id) for i in self._members(conn, case.id, target)]
            votes = self._votes(conn, case.id, target)
            rows = conn.execute(select(D).where(where_target(D, case.id, target)).order_by(D.c.id))
            decisions = [
                decision_of(r, [v for v in votes if v.id in set(r.votes or [])]) for r in rows
            ]
        return TargetView(target, state, items, votes, decisions)

    def queue(self, ref: str, actor: Actor, *, limit: int = 20) -> list[QueueEntry]:
        """What ``actor`` reviews next, in the scan's rank order: clusters of new media,
        then known matches to confirm, then new videos that partly re-use a known video;
        targets they voted on, settled ones and disputed ones (the lead's) left out."""
        _person(actor, UserRole.REVIEWER)
        with self.db.read() as conn:
            case = self._cases.row_of(conn, ref)
            mine = voted_by(conn, int(case.id), actor.user_id)
            open_states = (ReviewState.PENDING.value, ReviewState.VOTED.value)
            return queue_targets(conn, int(case.id), open_states, skip=mine, limit=max(0, limit))

    def around(
        self, ref: str, actor: Actor, target: Target, *, as_lead: bool = False
    ) -> tuple[Target | None, Target | None, list[str]]:
        """(previous, next, reasons): ``target``'s neighbours in ``actor``'s queue (the
        lead's queue with ``as_lead``) by rank, and the reasons for its rank."""
        with self.db.read() as conn:
            case = self._cases.row_of(conn, ref)
            if as_lead:
                return around(conn, int(case.id), target, (ReviewState.DISPUTED.value,))
            mine = voted_by(conn, int(case.id), actor.user_id)
            states = (ReviewState.PENDING.value, ReviewState.VOTED.value)
            return around(conn, int(case.id), target, states, skip=mine)

    def lead_queue(self, ref: str) -> list[QueueEntry]:
        """The disputed targets, in the same order."""
        with self.db.read() as conn:
            case_id = int(self._cases.row_of(conn, ref).id)
            return queue_targets(conn, case_id, (ReviewState.DISPUTED.value,))

    # -- internals -----------------------------------------------------------------------

    def _item_row(self, conn: Connection, case: Any, item_id: int) -> Any:
        row = conn.execute(
            select(IT).where(and_(IT.c.id == item_id, IT.c.case_id == case.id))
        ).first()
        if row is None:
            raise CaseNotFoundError(f"case {case.case_uid} has no item {item_id}")
        return row

    def _check_target(self, conn: Connection, case: Any, target: Target, own: bool = True) -> None:
        if target.cluster is not None:
            require_cluster(conn, case, target.cluster)
            return
        assert target.item is not None
        item = self._item_row(conn, case, target.item)
        if own and item.cluster_number is not None and not item.split_off:
            raise ReviewConflictError(
                f"item {target.item} is in cluster {item.cluster_number}: vote on the cluster, "
                "or split the item off first"
            )

    def _members(self, conn: Connection, case_id: int, target: Target) -> list[Any]:
        if target.item is not None:
            return list(conn.execute(select(IT).where(IT.c.id == target.item)).all())
        # Sorted here: an ORDER BY rank leads SQLite to walk the rank index over the whole
        # case rather than the cluster's index over its members.
        rows = conn.execute(
            select(IT).where(
                and_(
                    IT.c.case_id == case_id,
                    IT.c.cluster_number == target.cluster,
                    IT.c.split_off.is_(False),
                )
            )
        ).all()
        return sorted(rows, key=lambda r: int(r.rank))

    @staticmethod
    def _votes(conn: Connection, case_id: int, target: Target) -> list[Vote]:
        rows = conn.execute(select(V).where(where_target(V, case_id, target)).order_by(V.c.id))
        return [vote_of(r) for r in rows]

    @staticmethod
    def _active_decision(conn: Connection, case_id: int, target: Target) -> Any:
        return conn.execute(
            select(D.c.id).where(and_(where_target(D, case_id, target), D.c.revoked_at.is_(None)))
        ).first()

    def _counting(self, conn: Connection, case_id: int, target: Target) -> list[Vote]:
        """Current votes that no revoked decision was made on."""
        used: set[int] = set()
        for row in conn.execute(
            select(D.c.votes).where(
                and_(where_target(D, case_id, target), D.c.revoked_at.is_not(None))
            )
        ):
            used.update(int(i) for i in row.votes or [])
        return [v for v in self._votes(conn, case_id, target) if v.current and v.id not in used]

    def _state(
        self, conn: Connection, case: Any, target: Target
    ) -> tuple[ReviewState, VoteChoice | None]:
        settled = self._active_decision(conn, case.id, target) is not None
        revoked = (
            conn.execute(
                select(D.c.id).where(
                    and_(where_target(D, case.id, target), D.c.revoked_at.is_not(None))
                )
            ).first()
            is not None
        )
        counting = [v.choice for v in self._counting(conn, case.id, target)]
        return review_state(
            counting, int(case.consensus_k), settled=settled, revoked_before=revoked
        )

    def _stored_state(self, conn: Connection, case_id: int, target: Target) -> str:
        if target.cluster is not None:
            table, where = (
                CASE_CLUSTERS,
                and_(CASE_CLUSTERS.c.case_id == case_id, CASE_CLUSTERS.c.number == target.cluster),
            )
        else:
            table, where = IT, IT.c.id == target.item
        return str(conn.execute(select(table.c.review_status).where(where)).scalar_one())

    def _write_state(
        self, conn: Connection, case_id: int, target: Target, state: ReviewState
    ) -> None:
        """The target's state, on the cluster row and every member, or on the item."""
        if target.cluster is not None:
            conn.execute(
                update(CASE_CLUSTERS)
                .where(
                    and_(
                        CASE_CLUSTERS.c.case_id == case_id, CASE_CLUSTERS.c.number == target.cluster
                    )
                )
                .values(review_status=state.value)
            )
        ids = [int(i.id) for i in self._members(conn, case_id, target)]
        if ids:
            conn.execute(update(IT).where(IT.c.id.in_(ids)).values(review_status=state.value))

    def _insert_decision(
        self,
        conn: Connection,
        case: Any,
        target: Target,
        choice: VoteChoice,
        *,
        how: str,
        by: str,
        votes: list[int],
    ) -> int:
        new = conn.execute(
            insert(D).values(
                case_id=case.id,
                cluster_number=target.cluster,
                item_id=target.item,
                how=how,
                decided_by=by,
                decided_at=utcnow(),
                votes=votes,
                entry_ids=[],
                **_choice_values(choice),
            )
        ).inserted_primary_key
        assert new is not None
        record_audit(
            conn,
            actor=by,
            action="case.decision",
            target=f"case:{case.case_uid}:{target}",
            details={"decision": int(new[0]), "how": how, "votes": votes} | choice.as_json(),
        )
        return int(new[0])


def _choice_values(choice: VoteChoice) -> dict[str, Any]:
    return choice.as_json()


def _settings(row: Any) -> ReviewSettings:
    return ReviewSettings(
        row.case_uid, row.scheme, row.known_list, row.ignorable_list, int(row.consensus_k)
    )
