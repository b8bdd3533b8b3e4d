"""The lineage graph of a history, laid out for an inline SVG: acquisition to release.

Nodes are the history's entries (access and key entries left out); edges are what the
entries themselves say: a derivation's ``inputs`` and ``outputs``, and every other entry's
``refs`` (a protocol to its acquisitions, members to their release, the consent that decided
it). Columns are the longest path from a source, so a protocol sits left of its acquisitions,
their de-identifications, the copies, and the release. A column with more than
``MAX_PER_COLUMN`` entries is drawn as one node per stage ("40 de-identified copies"), so a
study of hundreds of images stays readable; each node links to its (first) entry.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from radledger.web.describe import obj, seq, stage

MAX_PER_COLUMN = 8
NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 200, 52, 56, 18, 8
TITLE_CHARS = 24  # what fits a box in the stylesheet's 13 px bold
_LEFT_OUT = ("access.recorded", "key.registered", "key.revoked")
_STAGE_WORDS = {
    "protocol": ("protocol", "protocols"), "acquisition": ("acquisition", "acquisitions"),
    "derivation": ("derivation", "derivations"),
    "deidentified": ("de-identified copy", "de-identified copies"),
    "note": ("note", "notes"), "result": ("result", "results"),
    "release": ("release", "releases"), "consent": ("consent", "consent decisions"),
    "erasure": ("erasure", "erasures"), "correction": ("correction", "corrections"),
    "other": ("entry", "entries"),
}


@dataclass(frozen=True)
class Node:
    """A box: one entry, or several of one stage in one column."""

    x: int
    y: int
    stage: str
    title: str
    detail: str
    href_index: int
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Edge:
    """A curve between two boxes, with how many entry-to-entry links it stands for."""

    path: str
    count: int
    label_x: int
    label_y: int


@dataclass(frozen=True)
class Lineage:
    """The laid-out graph."""

    width: int
    height: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    node_w: int = NODE_W
    node_h: int = NODE_H


def _ints(value: object) -> list[int]:
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []


def links(entries: dict[int, dict[str, Any]]) -> set[tuple[int, int]]:
    """(from, to) pairs between the given entries, as the entries state them."""
    found: set[tuple[int, int]] = set()
    for index, entry in entries.items():
        body = obj(entry.get("body"))
        if entry.get("kind") == "derivation.recorded":
            found |= {(i, index) for i in _ints(body.get("inputs"))}
            found |= {(index, o["index"]) for o in seq(body.get("outputs"))
                      if isinstance(o, dict) and isinstance(o.get("index"), int)}
        else:
            found |= {(r, index) for r in _ints(entry.get("refs"))}
    return {(a, b) for a, b in found if a in entries and b in entries and a != b}


def _columns(nodes: list[int], edges: set[tuple[int, int]]) -> dict[int, int]:
    """Longest-path depth of each node (Kahn's order; anything left in a cycle is 0)."""
    incoming: dict[int, int] = {n: 0 for n in nodes}
    outgoing: dict[int, list[int]] = defaultdict(list)
    for a, b in edges:
        incoming[b] += 1
        outgoing[a].append(b)
    depth = dict.fromkeys(nodes, 0)
    ready = sorted(n for n in nodes if incoming[n] == 0)
    while ready:
        node = ready.pop(0)
        for nxt in outgoing[node]:
            depth[nxt] = max(depth[nxt], depth[node] + 1)
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                ready.append(nxt)
    return depth


def _label(entry: dict[str, Any], index: int) -> tuple[str, str]:
    body = obj(entry.get("body"))
    word = _STAGE_WORDS.get(stage(entry), ("entry", "entries"))[0]
    name = body.get("name") or body.get("operation") or body.get("modality") or \
        body.get("scope") or ""
    title = f"{word.capitalize()} {name}".strip() if isinstance(name, str) else word
    if len(title) > TITLE_CHARS:
        title = title[:TITLE_CHARS - 1] + "…"
    return title, f"entry {index}"


Box = tuple[int, ...]  # the entry indices one box stands for


def _boxes(columns: dict[int, list[int]], entries: dict[int, dict[str, Any]]
           ) -> dict[int, Box]:
    """Each entry's box: its own, or in a crowded column the one of its stage."""
    boxes: dict[int, Box] = {}
    for members in columns.values():
        if len(members) <= MAX_PER_COLUMN:
            boxes |= {m: (m,) for m in members}
            continue
        by_stage: dict[str, list[int]] = defaultdict(list)
        for m in members:
            by_stage[stage(entries[m])].append(m)
        for group in by_stage.values():
            boxes |= dict.fromkeys(group, tuple(group))
    return boxes


def _positions(columns: dict[int, list[int]], boxes: dict[int, Box],
               edges: set[tuple[int, int]]) -> dict[Box, tuple[int, int]]:
    """(column, row) of each box; a box's row follows the mean row of what points to it."""
    position: dict[Box, tuple[int, int]] = {}
    for col in sorted(columns):
        placed = list(dict.fromkeys(boxes[m] for m in columns[col]))
        weights: dict[Box, tuple[float, int]] = {}
        for box in placed:
            rows = [position[boxes[a]][1] for a, b in edges
                    if b in box and boxes[a] in position]
            weights[box] = (sum(rows) / len(rows) if rows else -1.0, box[0])
        for row, box in enumerate(sorted(placed, key=weights.__getitem__)):
            position[box] = (col, row)
    return position


def _node(box: Box, col: int, row: int, entries: dict[int, dict[str, Any]]) -> Node:
    first = entries[box[0]]
    if len(box) == 1:
        title, detail = _label(first, box[0])
    else:
        title = f"{len(box)} {_STAGE_WORDS.get(stage(first), ('', 'entries'))[1]}"
        detail = f"entries {box[0]}–{box[-1]}"
    return Node(MARGIN + col * (NODE_W + GAP_X), MARGIN + row * (NODE_H + GAP_Y),
                stage(first), title, detail, box[0], box)


def _edge(start: tuple[int, int], end: tuple[int, int], count: int) -> Edge:
    (c1, r1), (c2, r2) = start, end
    x1 = MARGIN + c1 * (NODE_W + GAP_X) + NODE_W
    y1 = MARGIN + r1 * (NODE_H + GAP_Y) + NODE_H // 2
    x2 = MARGIN + c2 * (NODE_W + GAP_X)
    y2 = MARGIN + r2 * (NODE_H + GAP_Y) + NODE_H // 2
    bend = max(GAP_X // 2, (x2 - x1) // 2)
    return Edge(f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}", count,
                (x1 + x2) // 2, (y1 + y2) // 2 - 4)


def lay_out(history: list[tuple[int, dict[str, Any]]]) -> Lineage:
    """The graph of ``history`` ((index, entry) pairs), laid out left to right."""
    entries = {i: e for i, e in history if e.get("kind") not in _LEFT_OUT}
    edges = links(entries)
    depth = _columns(sorted(entries), edges)
    columns: dict[int, list[int]] = defaultdict(list)
    for index in sorted(entries):
        columns[depth[index]].append(index)
    boxes = _boxes(columns, entries)
    position = _positions(columns, boxes, edges)
    nodes = [_node(box, col, row, entries) for box, (col, row) in position.items()]
    counts: dict[tuple[Box, Box], int] = defaultdict(int)
    for a, b in edges:
        counts[(boxes[a], boxes[b])] += 1
    drawn = [_edge(position[src], position[dst], n) for (src, dst), n in sorted(counts.items())]
    cols = max(columns, default=-1) + 1
    rows = max((r for _, r in position.values()), default=-1) + 1
    return Lineage(2 * MARGIN + max(0, cols * (NODE_W + GAP_X) - GAP_X),
                   2 * MARGIN + max(0, rows * (NODE_H + GAP_Y) - GAP_Y),
                   tuple(sorted(nodes, key=lambda n: (n.x, n.y))), tuple(drawn))
