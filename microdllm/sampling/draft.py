"""What a round of draft and verify checks: one path drawn from the window, or a tree of its likeliest paths.

The drafter's window gives, for each position behind the text, a distribution q_j of its own (one pass,
the positions independent). A draft made from it is checked by the verifier in one evaluation (verify.py):

  - a **path** (`tree=0`): d_j drawn from each q_j, kept by speculative sampling (Leviathan et al. 2023):
    each d_j passes with probability min(1, p_j(d_j) / q_j(d_j));
  - a **tree** of the N likeliest paths through the q_j (Medusa, Cai et al. 2024; SpecInfer, Miao et al.
    2024): the verifier reads every node behind its ancestors (tree attention), then writes as it would
    alone: it draws its own character at the root; while that character is a child of the node it stands
    on, it steps there for free and draws again. So every written character is the verifier's own draw,
    and a drafted character is kept only where the verifier drew it: its text, exactly; greedy, its
    greedy text. A tree offers several guesses where the drafter is unsure; a path, one.

With a `Coupling` (an n-gram of the training text, ngram.py) the positions are tied together: a path is
drawn left to right, each q_j reweighted by the characters before it (the text's, then the draft's), and
a tree ranks each node's children the same way. The check is unchanged: a path's q_j are the rows it
was drawn from, so the written text is the verifier's either way.

Nodes are listed parents first; node i's key is i + 1 and the root's (the text's end) 0: a round that ends
on the node with key j has kept j's path, and the window anchored at the clean input j reads its last
character (model.verify_and_draft).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ..ngram import NGram

TREE_WIDTH = 4     # a tree node's children: at most the 4 likeliest characters of the next position


@dataclass(frozen=True)
class Draft:
    chars: torch.Tensor             # (N,) drafted characters, parents first
    q: torch.Tensor                 # (depth, V) the window's distribution at each drafted position
    parents: tuple[int, ...] = ()   # a tree: each node's parent (-1: the root); () with `chars`: a path

    @property
    def is_tree(self) -> bool:
        return bool(self.parents)

    def depth(self, key: int) -> int:
        """Characters on the path to the node with this key (0: the root)."""
        return len(self.path(key)) if self.is_tree else key

    def path(self, key: int) -> list[int]:
        """The node indices from the root's child down to the node with this key."""
        out, i = [], key - 1
        while i >= 0:
            out.append(i)
            i = self.parents[i] if self.is_tree else i - 1
        return out[::-1]

    def main_path(self) -> list[int]:
        """The likeliest path: each node's first child, from the root (what the page shows as ghosts)."""
        if not self.is_tree:
            return list(range(len(self.chars)))
        out, at = [], -1
        for i, parent in enumerate(self.parents):
            if parent == at:
                out.append(i)
                at = i
        return out


EMPTY = Draft(torch.zeros(0, dtype=torch.long), torch.zeros(0, 0))


class Coupling(NamedTuple):
    """A copula for a draft (ngram.py): the n-gram, its weight beta, and the text's last characters."""
    ngram: NGram
    beta: float
    context: tuple[int, ...]

    def row(self, q_row: np.ndarray, before: tuple[int, ...]) -> np.ndarray:
        """q_row reweighted by the n-gram after the context and the characters drafted `before` it."""
        r = q_row * self.ngram.coupling(self.context + before, self.beta).numpy()
        total = r.sum()
        return r / total if total > 0 else q_row


def draw(weights: np.ndarray, u: float) -> int:
    """The index that a uniform u in [0, 1) picks from non-negative weights (not all 0), by their running
    sum: index i with probability weights[i] / sum. One row's draw in plain NumPy: a round draws a few
    characters from rows of ~84, where a torch.multinomial call each cost more than the rest of the draw."""
    running = np.cumsum(weights)
    i = int(np.searchsorted(running, u * running[-1], side="right"))
    return i if i < len(weights) else int(np.flatnonzero(weights)[-1])    # u * total rounded up to the total


def drawn_path(q: torch.Tensor, g: torch.Generator, coupling: Coupling | None = None) -> Draft:
    """One character drawn from each row of q; with a coupling, left to right, each from its row
    reweighted by the characters before it (the draft keeps the rows it drew from: speculative sampling
    needs them)."""
    if not len(q):
        return Draft(torch.zeros(0, dtype=torch.long), q)
    if coupling is None:
        return Draft(torch.multinomial(q, 1, generator=g).squeeze(-1), q)
    rows, chars = [], ()
    for q_row, u in zip(q.numpy(), torch.rand(len(q), generator=g).tolist()):
        rows.append(coupling.row(q_row, chars))
        chars += (draw(rows[-1], u),)
    return Draft(torch.tensor(chars), torch.from_numpy(np.stack(rows)))


def likeliest_tree(q: torch.Tensor, size: int, coupling: Coupling | None = None) -> Draft:
    """The `size` likeliest paths' nodes by the product of their q's (best first: a path's probability
    only falls as it grows, so every prefix of a chosen node is chosen first); children of a node are the
    TREE_WIDTH likeliest characters of the next row with q > 0 (with a coupling, the row reweighted by
    the node's path)."""
    rows = q.numpy()

    def children(depth: int, path: tuple[int, ...]) -> list[tuple[float, int]]:
        row = rows[depth] if coupling is None else coupling.row(rows[depth], path)
        top = np.argsort(-row, kind="stable")[:TREE_WIDTH]
        return [(float(row[c]), int(c)) for c in top if row[c] > 0]

    chars, parents, frontier = [], [], [(-v, -1, 0, (c,)) for v, c in children(0, ())] if len(q) else []
    heapq.heapify(frontier)
    while frontier and len(chars) < size:
        minus_p, parent, depth, path = heapq.heappop(frontier)
        node = len(chars)
        chars.append(path[-1])
        parents.append(parent)
        if depth + 1 < len(q):
            for v, c in children(depth + 1, path):
                heapq.heappush(frontier, (minus_p * v, node, depth + 1, path + (c,)))
    return Draft(torch.tensor(chars, dtype=torch.long), q, tuple(parents))


def walk(draft: Draft, p: torch.Tensor, g: torch.Generator) -> tuple[int, int]:
    """A tree's check: the verifier draws at the root (row 0 of p) and at each node it steps to (row key);
    it steps while its draw is a child. Returns (the key where it stopped, the character it drew there)."""
    children: dict[tuple[int, int], int] = {(parent + 1, int(c)): i + 1
                                           for i, (parent, c) in enumerate(zip(draft.parents, draft.chars.tolist()))}
    key, rows = 0, p.numpy()
    for u in torch.rand(len(p), generator=g).tolist():      # at most one draw a row
        char = draw(rows[key], u)
        if (key, char) not in children:
            return key, char
        key = children[(key, char)]
    raise AssertionError("a walk steps down the tree at most once a row")


def speculative(draft: Draft, p: torch.Tensor, g: torch.Generator) -> tuple[int, int]:
    """A path's check (speculative sampling): how many drafted characters pass in a row, each with
    probability min(1, p(d) / q(d)); then a character drawn from max(p - q, 0) where one failed, or from
    the row after the path when all passed. Returns (characters kept, the character drawn)."""
    d, p, q = draft.chars.tolist(), p.numpy(), draft.q.numpy()
    *draws, last = torch.rand(len(d) + 1, generator=g).tolist()
    kept = next((i for i, (c, u) in enumerate(zip(d, draws)) if u * max(q[i, c], 1e-12) >= p[i, c]), len(d))
    rest = np.maximum(p[kept] - q[kept], 0) if kept < len(d) else p[kept]
    return kept, draw(rest if rest.sum() > 0 else p[kept], last)


def likeliest_ends(draft: Draft, count: int) -> list[int]:
    """The keys of the `count` nodes a check is likeliest to stop on, by the draft's own estimate: a path's
    character i passes with probability about q_i(d_i), a tree's walk steps to a child with about its q;
    it stops on a node with the probability of reaching it times that of no child drawn. The deepest
    possible end (kept whole) first when it is chosen, then by key."""
    nodes = len(draft.chars)
    if count >= nodes + 1:
        return [nodes] + list(range(nodes)) if not draft.is_tree else list(range(nodes + 1))
    sure = draft.q[[draft.depth(i + 1) - 1 for i in range(nodes)], draft.chars].tolist() if nodes else []
    parents = draft.parents if draft.is_tree else tuple(range(-1, nodes - 1))
    reach, onward = [1.0] + [0.0] * nodes, [0.0] * (nodes + 1)
    for i, parent in enumerate(parents):
        reach[i + 1] = reach[parent + 1] * sure[i]
        onward[parent + 1] += sure[i]
    odds = [r * max(1 - s, 0.0) for r, s in zip(reach, onward)]
    likeliest = sorted(range(nodes + 1), key=lambda k: -odds[k])[:count]
    return sorted(likeliest, key=lambda k: (k != nodes or draft.is_tree, k))
