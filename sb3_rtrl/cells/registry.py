"""Cells by name, for ``policy_kwargs=dict(cell=...)``: a new cell is one module plus one ``register_cell`` call."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from sb3_rtrl.cells.base import ElementwiseRecurrentCell

# Set by the policies for every cell (part of the cells' shared constructor); "hidden_size" is the policy's own
# keyword (each head's width), refused in cell_kwargs for clarity.
POLICY_SET_KEYWORDS = frozenset(
    {"input_size", "state_size", "hidden_size", "input_init_std", "groups", "input_mask", "device", "dtype"}
)


@dataclass(frozen=True)
class CellEntry:
    """
    A registered cell.

    :param cls: the cell class (its constructor takes the shared keywords, see ``ElementwiseRecurrentCell``)
    :param policy_defaults: the cell's keywords as the policies set them unless told otherwise (they may
        differ from the class's own defaults, which follow the cell's paper)
    """

    cls: type[ElementwiseRecurrentCell]
    policy_defaults: dict[str, Any] = field(default_factory=dict)

    def keywords(self) -> list[str]:
        """The keywords of the cell's own (not set by the policies)."""
        params = inspect.signature(self.cls.__init__).parameters
        return [name for name in params if name != "self" and name not in POLICY_SET_KEYWORDS]


CELLS: dict[str, CellEntry] = {}


def register_cell(name: str, cls: type[ElementwiseRecurrentCell], policy_defaults: dict[str, Any] | None = None) -> None:
    """
    Make a cell available to the policies as ``policy_kwargs=dict(cell=name)``.

    :param name: the name users pass
    :param cls: a subclass of ``ElementwiseRecurrentCell``
    :param policy_defaults: keywords the policies pass to it unless the user's ``cell_kwargs`` say otherwise
    """
    if not (isinstance(cls, type) and issubclass(cls, ElementwiseRecurrentCell)):
        raise ValueError(f"register_cell: {cls!r} is not a subclass of ElementwiseRecurrentCell")
    if name in CELLS and CELLS[name].cls is not cls:
        raise ValueError(f"register_cell: the name {name!r} is taken by {CELLS[name].cls.__name__}")
    entry = CellEntry(cls, dict(policy_defaults or {}))
    unknown = sorted(set(entry.policy_defaults) - set(entry.keywords()))
    if unknown:
        raise ValueError(f"register_cell: {cls.__name__} takes no keywords {unknown}")
    CELLS[name] = entry


def cell_entry(name: str) -> CellEntry:
    """The registered cell ``name``; ValueError naming the registered ones if there is none."""
    if not isinstance(name, str) or name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; registered cells: {sorted(CELLS)}")
    return CELLS[name]


def resolve_cell_kwargs(name: str, cell_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """
    The keywords the policies pass to cell ``name``: its policy defaults updated by ``cell_kwargs``.

    :raises ValueError: for a keyword the cell does not take, or one the policies set themselves
    """
    entry = cell_entry(name)
    given = dict(cell_kwargs or {})
    reserved = sorted(set(given) & POLICY_SET_KEYWORDS)
    if reserved:
        raise ValueError(
            f"cell_kwargs {reserved} are set by the policy (its hidden_size sets the state size; input_init_std is "
            "a policy keyword)"
        )
    unknown = sorted(set(given) - set(entry.keywords()))
    if unknown:
        raise ValueError(f"cell {name!r} ({entry.cls.__name__}) takes no keywords {unknown}; its keywords: {entry.keywords()}")
    return {**entry.policy_defaults, **given}
