"""Command groups whose commands are built only when the group is used.

Typer turns every command's signature into Click parameters before any command runs; for the
~70 commands of the groups that was a quarter of ``hashwatch version``'s start-up. A group
added with :func:`add_lazy_typer` is registered exactly as ``add_typer`` registers it, but its
Click group is built the first time it is looked up: when it is invoked, or when a help page
lists it. The commands of the root (``version``, ``scan``, ...) are built as before.
"""

from __future__ import annotations

from typing import Any, ClassVar

import typer
from typer import _click  # Typer's own copy of Click: the types TyperGroup's methods take
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

__all__ = ["LazyGroups", "add_lazy_typer"]


class LazyGroups(TyperGroup):
    """A root group that builds its sub-groups on first lookup.

    Subclass it once per root, with its own ``lazy`` registry, and pass the subclass as the
    root Typer's ``cls``; :func:`add_lazy_typer` fills the registry."""

    lazy: ClassVar[dict[str, TyperInfo]]
    root: ClassVar[typer.Typer]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._built: dict[str, _click.Command] = {}

    def list_commands(self, ctx: _click.Context) -> list[str]:
        # The order ``add_typer`` gives: the root's own commands, then the groups as added.
        own = [n for n in super().list_commands(ctx) if n not in self.lazy]
        return [*own, *self.lazy]

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        if args and args[0] not in self.commands and args[0] not in self.lazy:
            # An unknown name: Typer suggests the closest of ``self.commands``, so the groups
            # join them (built now, on this error path only).
            for name in self.lazy:
                self.commands.setdefault(name, self._group(name))
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        return self._group(cmd_name)

    def _group(self, cmd_name: str) -> _click.Command:
        if cmd_name not in self._built:
            self._built[cmd_name] = get_group_from_info(
                self.lazy[cmd_name],
                pretty_exceptions_short=self.root.pretty_exceptions_short,
                rich_markup_mode=self.root.rich_markup_mode,
                suggest_commands=self.root.suggest_commands,
            )
        return self._built[cmd_name]


def add_lazy_typer(app: typer.Typer, group: typer.Typer, name: str) -> None:
    """``app.add_typer(group, name=name)``, with ``group``'s commands built when first used.

    ``app`` must have been made with a :class:`LazyGroups` subclass as its ``cls``."""
    root = app.info.cls
    if not (isinstance(root, type) and issubclass(root, LazyGroups)):
        raise TypeError("add_lazy_typer needs a Typer made with cls=<a LazyGroups subclass>")
    app.add_typer(group, name=name)
    root.lazy[name] = app.registered_groups.pop()
    root.root = app
