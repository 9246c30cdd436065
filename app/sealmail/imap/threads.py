"""THREAD's algorithms (RFC 5256 §4) and the THREAD response's nesting (RFC 5256 §5, thread-list).

Pure functions over the rows the store gives (``store.ordering.ThreadMessage``, in mailbox order):
``ordered_subject`` and ``references`` return the threads as trees of ``Node``; ``thread_text``
writes one tree the way the response spells it. The trees are walked without recursion, so a
10,000-message reply chain costs no stack.

Every "sort by sent date" below breaks ties by mailbox order (RFC 5256 §2.2); UIDs ascend with
sequence numbers, so the UID is the tie-breaker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sealmail.store.ordering import ThreadMessage


@dataclass(eq=False, slots=True)
class Node:
    """A message of a thread, or a dummy (``msg`` None) standing for a message that is not there."""

    msg: ThreadMessage | None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)


def _key(node: Node) -> tuple[str, int]:
    # A dummy sorts as its first child (RFC 5256 §4 REFERENCES steps 4 and 6), children sorted first.
    while node.msg is None and node.children:
        node = node.children[0]
    return (node.msg.date, node.msg.uid) if node.msg is not None else ("", 0)


# ---- ORDEREDSUBJECT -----------------------------------------------------------------------------
def ordered_subject(messages: Iterable[ThreadMessage]) -> list[Node]:
    """RFC 5256 §4 ORDEREDSUBJECT: one thread per base subject, its messages by sent date; the first
    is the root and every later one its child; threads ordered by their first message's sent date."""
    groups: dict[str, list[ThreadMessage]] = {}
    for m in messages:
        groups.setdefault(m.subject, []).append(m)
    threads = []
    for members in groups.values():
        members.sort(key=lambda m: (m.date, m.uid))
        root = Node(members[0])
        root.children = [Node(m, root) for m in members[1:]]
        threads.append(root)
    threads.sort(key=_key)
    return threads


# ---- REFERENCES ---------------------------------------------------------------------------------
def references(messages: Sequence[ThreadMessage]) -> list[Node]:
    """RFC 5256 §4 REFERENCES: threads from Message-ID/References, then merged by base subject."""
    roots = _link(messages)
    roots = _prune(roots)
    _sort_levels(roots)
    roots = _merge_by_subject(roots)
    _sort_levels(roots)
    return roots


def _link(messages: Sequence[ThreadMessage]) -> list[Node]:
    """Step 1 (links from IDs) and step 2 (the nodes without a parent are the first of each thread)."""
    by_id: dict[str, Node] = {}
    nodes: list[Node] = []
    for m in messages:
        node = by_id.get(m.message_id) if m.message_id else None
        if node is not None and node.msg is None:
            node.msg = m  # the dummy an earlier message's references made for this ID
        else:
            # No ID, or one an earlier message has: this message gets a unique ID of its own (1.A).
            node = Node(m)
            if m.message_id and m.message_id not in by_id:
                by_id[m.message_id] = node
        nodes.append(node)
        # 1.A: each reference the parent of the next; an existing parent stays; never a loop
        previous: Node | None = None
        for ref in m.references:
            current = by_id.get(ref)
            if current is None:
                current = by_id[ref] = Node(None)
            if previous is not None and current.parent is None and _can_adopt(previous, current):
                _adopt(previous, current)
            previous = current
        # 1.B: the last reference is the parent (a truncated References may have put it elsewhere)
        if node.parent is not None:
            _orphan(node)
        if previous is not None and _can_adopt(previous, node):
            _adopt(previous, node)
    seen: set[int] = set()
    roots = []
    for node in [*nodes, *by_id.values()]:
        if node.parent is None and id(node) not in seen:
            seen.add(id(node))
            roots.append(node)
    return roots


def _can_adopt(parent: Node, child: Node) -> bool:
    """False when ``parent`` is ``child`` or one of its descendants: the link would make a loop."""
    if not child.children:  # the usual case, a new message: nothing below it to walk up from
        return parent is not child
    node: Node | None = parent
    while node is not None:
        if node is child:
            return False
        node = node.parent
    return True


def _adopt(parent: Node, child: Node) -> None:
    child.parent = parent
    parent.children.append(child)


def _orphan(node: Node) -> None:
    if node.parent is not None:
        node.parent.children.remove(node)
        node.parent = None


def _post_order(roots: Sequence[Node]) -> list[Node]:
    """Every node below and including ``roots``, each after all its descendants."""
    order: list[Node] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    order.reverse()
    return order


def _prune(roots: list[Node]) -> list[Node]:
    """Step 3: drop dummies without children; splice a dummy's children into its place, but not to
    the top level unless it has only one."""
    for node in _post_order(roots):
        node.children = _pruned(node, node.children, top=False)
    return _pruned(None, roots, top=True)


def _pruned(parent: Node | None, children: list[Node], *, top: bool) -> list[Node]:
    kept: list[Node] = []
    for child in children:
        if child.msg is None and (not child.children or not top or len(child.children) == 1):
            for grandchild in child.children:
                grandchild.parent = parent
            kept.extend(child.children)
        else:
            kept.append(child)
    return kept


def _sort_levels(roots: list[Node]) -> None:
    """Steps 4 and 6: every set of siblings by sent date, the deepest first, the threads last."""
    for node in _post_order(roots):
        if len(node.children) > 1:
            node.children.sort(key=_key)
    roots.sort(key=_key)


def _merge_by_subject(roots: list[Node]) -> list[Node]:
    """Step 5: threads whose first messages share a base subject become one thread."""

    def subject(node: Node) -> str:
        first = node if node.msg is not None or not node.children else node.children[0]
        return first.msg.subject if first.msg is not None else ""

    table: dict[str, Node] = {}
    for node in roots:  # 5.B: one thread per subject, preferring a dummy, then a non-reply
        name = subject(node)
        if not name:
            continue
        held = table.get(name)
        if held is None or (held.msg is not None and (node.msg is None or (held.msg.reply and not _reply(node)))):
            table[name] = node
    result: list[Node] = []
    gone: set[int] = set()
    for node in roots:  # 5.C: merge each thread into the one the table holds for its subject
        name = subject(node)
        held = table.get(name) if name else None
        if held is None or held is node or node.parent is not None:
            continue
        gone.add(id(node))
        if held.msg is None and node.msg is None:
            for child in node.children:
                child.parent = held
            held.children.extend(node.children)
            node.children = []
        elif held.msg is None or (_reply(node) and not _reply(held)):
            _adopt(held, node)
        else:
            dummy = Node(None)
            gone.add(id(held))
            _adopt(dummy, held)
            _adopt(dummy, node)
            table[name] = dummy
            result.append(dummy)
    result.extend(node for node in roots if id(node) not in gone)
    return [node for node in result if node.parent is None]


def _reply(node: Node) -> bool:
    return node.msg is not None and node.msg.reply


# ---- the response -------------------------------------------------------------------------------
def thread_text(root: Node, number: Callable[[int], int]) -> str:
    """One thread-list (RFC 5256 §5): a chain of single children as numbers, branches nested;
    ``number`` turns a UID into what the client asked for (sequence number or UID)."""
    out: list[str] = []
    stack: list[Node | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        out.append("(")
        node, first = item, True
        while True:
            if node.msg is not None:
                out.append(("" if first else " ") + str(number(node.msg.uid)))
                first = False
            if len(node.children) != 1:
                break
            node = node.children[0]
        stack.append(")")
        if node.children:
            if not first:
                out.append(" ")
            stack.extend(reversed(node.children))
    return "".join(out)
