"""Line-numbered YAML: composed nodes, strict mappings, every failure at ``file:line``.

We walk ``yaml.compose`` nodes rather than ``safe_load`` output so every
error can name its line. Anything PyYAML's safe loader accepts must load
here too -- anchors, aliases, merge keys (``<<: *base``), standard tags --
so merge keys are resolved on the nodes (values keep their own lines), and
every constructor failure becomes a :class:`ScenarioError` at the node that
caused it, never a traceback.

The file is composed once (libyaml's composer when PyYAML has it: ~9x faster
on large files, same marks); per-item work reads the nodes, never the text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import yaml

from . import build
from .errors import FieldError, ScenarioError
from .model import SourceRef

T = TypeVar("T")

MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"
STR_TAG = "tag:yaml.org,2002:str"
#: libyaml's composer when available; its syntax errors point a line later than the pure
#: loader's, so a file that fails to parse is composed again by the pure loader for the message.
_BASE_COMPOSER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: The composer's own resolver (its implicit resolvers), asked once per distinct
#: (kind, value, implicit flags) by :class:`_Composer`.
_RESOLVER = _BASE_COMPOSER("")
_TAGS_MAX = 4096


class _Composer(_BASE_COMPOSER):  # type: ignore[misc,valid-type]
    """The safe composer, with the Python hooks libyaml calls for every node made cheap.

    Even libyaml's composer calls back into Python three times for every node: to
    resolve a scalar's tag (int? bool? timestamp? -- a regular expression each), and
    ``descend_resolver`` / ``ascend_resolver`` around it, which only do something for
    path resolvers (``yaml.add_path_resolver``). The safe loader has none, so a tag
    depends only on (kind, value, implicit flags): ``resolve`` is the safe resolver's
    own, remembered in C (``functools.lru_cache``: a suite repeats ``name``,
    ``faultType``, ``30m`` thousands of times), and the two path hooks are C
    callables that take their arguments and do nothing (``slice`` and ``tuple``: no
    Python frame per node). A loader class given path resolvers keeps PyYAML's own
    hooks.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        if not self.yaml_path_resolvers:  # instance attributes: the C composer looks them up
            self.resolve = _cached_resolve
            self.descend_resolver = slice  # (parent, index) -> ignored
            self.ascend_resolver = tuple  # () -> ignored


_cached_resolve = functools.lru_cache(maxsize=_TAGS_MAX)(_RESOLVER.resolve)
_COMPOSER = _Composer

#: Scalars whose values are immutable and depend on their text alone, and those values
#: by (tag, text): a suite writes ``times: 1`` or ``distTask: on`` thousands of times.
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                         "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"})
_PLAIN_VALUES: dict[tuple[str, str], object] = {}


def compose(text: str, path: str, line_offset: int = 0) -> yaml.Node | None:
    """The document's root node; malformed YAML becomes a ScenarioError with its line."""
    try:
        return yaml.compose(text, Loader=_COMPOSER)
    except yaml.YAMLError:
        pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark is not None else None
        context = exc.context or ""
        if context and exc.context_mark is not None and mark is not exc.context_mark:
            context += f" (line {exc.context_mark.line + 1 + line_offset})"
        problem = ", ".join(p for p in (context, exc.problem) if p) or str(exc)
        raise ScenarioError(SourceRef(path, line), f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(SourceRef(path), f"malformed YAML: {exc}") from None


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


class Ctx:
    """The file being read: turns nodes into values and problems into ScenarioErrors.

    ``line_offset`` places a document embedded in another file (QA's config list
    holds each case file in a ``default: |`` string) at its lines in the outer file.
    """

    def __init__(self, path: str, line_offset: int = 0) -> None:
        self.path = path
        self.line_offset = line_offset
        self._constructor: yaml.SafeLoader | None = None

    @property
    def constructor(self) -> yaml.SafeLoader:
        """The safe loader's constructor, made when a value first needs it: strings and
        remembered plain scalars never do, and a loader is a knot of reference cycles
        that only the cyclic collector frees (one per file read, otherwise)."""
        if self._constructor is None:
            self._constructor = yaml.SafeLoader("")
        return self._constructor

    def line(self, node: yaml.Node) -> int:
        return int(node.start_mark.line) + 1 + self.line_offset

    def ref(self, node: yaml.Node) -> SourceRef:
        return SourceRef(file=self.path, line=self.line(node))

    def error(self, node: yaml.Node, message: str) -> ScenarioError:
        return ScenarioError(self.ref(node), message)

    def value(self, node: yaml.Node, _active: frozenset[int] = frozenset()) -> object:
        """The Python value of ``node`` as the safe loader builds it (merge keys resolved)."""
        if node.tag == STR_TAG and isinstance(node, yaml.ScalarNode):
            return node.value  # what the safe constructor returns for a string, minus its cost
        if id(node) in _active:
            raise self.error(node, "recursive alias: this value contains itself")
        try:
            if isinstance(node, yaml.MappingNode):
                inner = _active | {id(node)}
                out: dict[object, object] = {}
                for k, v, merged in self.items(node):
                    name = self.value(k, inner)
                    if merged and name in out:
                        continue
                    out[name] = self.value(v, inner)
                return out
            if isinstance(node, yaml.SequenceNode):
                inner = _active | {id(node)}
                return [self.value(n, inner) for n in node.value]
            tag = node.tag
            if tag in _PLAIN_TAGS:  # an int, float, bool or null: built once per spelling
                key = (tag, node.value)
                if key in _PLAIN_VALUES:
                    return _PLAIN_VALUES[key]
                value = self.constructor.construct_object(node, deep=True)
                if len(_PLAIN_VALUES) >= _TAGS_MAX:
                    _PLAIN_VALUES.clear()
                _PLAIN_VALUES[key] = value
                return value
            return self.constructor.construct_object(node, deep=True)
        except ScenarioError:
            raise
        except yaml.MarkedYAMLError as exc:
            raise self.error(node, f"cannot read this value: {exc.problem or exc}") from None
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise self.error(node, f"cannot read {node.value!r} as {_tag(node)}: {exc}") from None

    def items(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """``(key, value, merged)`` of a mapping, merge keys resolved (YAML 1.1 merge).

        Own keys come first; merged keys follow in precedence order (the first of
        ``<<: [*a, *b]`` wins) and only where no own or earlier key has the name
        -- :class:`Map` applies that, since it knows the names.
        """
        if not any(k.tag == MERGE_TAG for k, _ in node.value):  # the common case: no `<<`
            return [(k, v, False) for k, v in node.value]
        return list(self._items(node, frozenset()))

    def _items(self, node: yaml.MappingNode,
               active: frozenset[int]) -> Iterator[tuple[yaml.Node, yaml.Node, bool]]:
        active = active | {id(node)}
        merges: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append((key_node, value_node))
            else:
                yield key_node, value_node, False
        for key_node, value_node in merges:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) \
                else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise self.error(key_node, "a merge key (<<) takes a mapping or a list of "
                                               f"mappings (e.g. <<: *base), got {kind_of(source)}")
                if id(source) in active:
                    raise self.error(key_node, "recursive merge: this mapping merges itself")
                for sub_key, sub_value, _ in self._items(source, active):
                    yield sub_key, sub_value, True

    def key_name(self, key_node: yaml.Node) -> object:
        tag = key_node.tag
        if tag == STR_TAG and isinstance(key_node, yaml.ScalarNode):
            return key_node.value
        if tag == VALUE_TAG:  # the YAML 1.1 '=' key: a plain string here
            return "="
        return self.value(key_node)


def _tag(node: yaml.Node) -> str:
    tag = str(node.tag)
    return "!!" + tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else tag


@functools.lru_cache(maxsize=64)
def _key_set(allowed: tuple[str, ...]) -> frozenset[str]:
    """``allowed`` as a set (a section's allowed keys are a constant tuple)."""
    return frozenset(allowed)


class Map:
    """A YAML mapping with strict keys: unknown and duplicate keys are errors.

    A key from a merge (``<<: *base``) is overridden by the mapping's own key of
    the same name; two own keys of one name are a mistake (Go's YAML, which QA's
    harness uses, rejects them too).

    ``items`` maps each key to its value node, ``key_nodes`` to its key node (for the
    line of a duplicate). :meth:`node_of` is ``items.get`` itself, bound once: the
    loader asks a mapping for its keys hundreds of thousands of times in a suite, most
    of them for keys the case does not have.
    """

    __slots__ = ("ctx", "items", "key_nodes", "node", "node_of", "what")

    def __init__(self, ctx: Ctx, node: yaml.Node, what: str, allowed: tuple[str, ...],
                 hint: Callable[[str], str] | None = None) -> None:
        if not isinstance(node, yaml.MappingNode):
            raise ctx.error(node, f"{what} must be a mapping (key: value), got {kind_of(node)}")
        self.ctx, self.node, self.what = ctx, node, what
        self.items: dict[str, yaml.Node] = {}
        self.key_nodes: dict[str, yaml.Node] = {}
        if not self._plain(allowed, hint):  # a merge key (``<<``): the general walk
            self.items = {}
            self.key_nodes = {}
            self._merged(allowed, hint)
        #: the value node of a key, None when the mapping has no such key
        self.node_of: Callable[[str], yaml.Node | None] = self.items.get

    def _plain(self, allowed: tuple[str, ...], hint: Callable[[str], str] | None) -> bool:
        """The mapping's own keys, checked; False (nothing raised) at a merge key.

        The loop every mapping of every case goes through (a suite has hundreds of
        thousands of keys), so it reads the pairs directly and looks ``allowed`` up in a
        set. It checks the own keys in the order :meth:`_merged` does, so a mapping
        without ``<<`` gets the same keys and the same first error either way.
        """
        ctx, items, key_nodes = self.ctx, self.items, self.key_nodes
        allowed_set = _key_set(allowed)
        for key_node, value_node in self.node.value:
            tag = key_node.tag
            if tag == STR_TAG and isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            elif tag == MERGE_TAG:
                return False
            else:
                key = ctx.key_name(key_node)
            if key.__class__ is not str or key not in allowed_set or key in items:
                self._refuse(key_node, key, allowed, hint)
            items[key] = value_node
            key_nodes[key] = key_node
        return True

    def _refuse(self, key_node: yaml.Node, key: object, allowed: tuple[str, ...],
                hint: Callable[[str], str] | None) -> NoReturn:
        """Raise the error for a key that is not a string, a duplicate or unknown."""
        ctx, what = self.ctx, self.what
        if not isinstance(key, str):
            raise ctx.error(key_node, f"{what}: keys must be strings, got {key!r}")
        if key in self.items:
            first = ctx.line(self.key_nodes[key])
            raise ctx.error(key_node, f"{what}: duplicate key {key!r} (first on line {first})")
        if key not in allowed:
            extra = hint(key) if hint is not None else ""
            raise ctx.error(
                key_node,
                f"unknown key {key!r} in {what}{build.suggest(key, allowed)}{extra}; "
                f"allowed: {', '.join(allowed)}",
            )
        raise AssertionError(f"{key!r} is a new, allowed key")  # callers ask only when not

    def _merged(self, allowed: tuple[str, ...], hint: Callable[[str], str] | None) -> None:
        """Own keys, then merged keys in precedence order (see :meth:`Ctx.items`)."""
        ctx = self.ctx
        for key_node, value_node, merged in ctx.items(self.node):
            # a plain string key (nearly all) without the call
            key = key_node.value if key_node.tag == STR_TAG and isinstance(
                key_node, yaml.ScalarNode) else ctx.key_name(key_node)
            if isinstance(key, str) and key in self.items and merged:
                continue
            if not isinstance(key, str) or key in self.items or key not in allowed:
                self._refuse(key_node, key, allowed, hint)
            self.items[key] = value_node
            self.key_nodes[key] = key_node

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def at(self, key: str | None) -> yaml.Node:
        """The node to blame for ``key`` (its value, else the mapping itself)."""
        node = self.items.get(key) if key else None
        return node if node is not None else self.node

    def raw(self, key: str) -> object:
        node = self.items.get(key)
        if node is None:
            return None
        return self.ctx.value(node)

    def required(self, key: str) -> yaml.Node:
        node = self.items.get(key)
        if node is None:
            raise self.ctx.error(self.node, f"{self.what} needs {key!r}")
        return node

    def get(self, key: str, conv: Callable[[object, str], T], default: T) -> T:
        node = self.items.get(key)
        if node is None:
            return default
        return self.convert(node, key, conv)

    def need(self, key: str, conv: Callable[[object, str], T]) -> T:
        node = self.items.get(key)
        if node is None:
            raise self.ctx.error(self.node, f"{self.what} needs {key!r}")
        return self.convert(node, key, conv)

    def convert(self, node: yaml.Node, key: str, conv: Callable[[object, str], T]) -> T:
        if not isinstance(node, yaml.ScalarNode):
            raise self.ctx.error(node, f"{key} must be a single value, got {kind_of(node)}")
        # a string (most values) is its own text: Ctx.value's first step, without the call
        value = node.value if node.tag == STR_TAG else self.ctx.value(node)
        try:
            return conv(value, key)
        except FieldError as exc:
            raise self.ctx.error(node, exc.message) from None

    def seq(self, key: str) -> list[yaml.Node]:
        node = self.items.get(key)
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.ctx.error(node, f"{key} must be a list (- item), got {kind_of(node)}")
        return list(node.value)
