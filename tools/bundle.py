"""The board's build loads the modules a session always holds as one module.

Stock firmware holds each imported ``.mpy`` as a module of its own: a module object, a
globals dict (with its slack, and an entry for every name it imports from the others),
and its name and its file's path interned for good. Measured in the sim, that is ~250 B
of a chip's heap a module beyond its code. The modules of ``BUNDLES`` are imported by a
client's session together and stay until the app ends, so the flash build
(``tools/board_source.py``) writes them as one module, ``ovpnkx._session``:

- each member's source, in the order given (a member's top-level code may use only the
  members before it), under a comment naming it;
- a member's imports of another member go: the name is the bundle's own global already
  (``from .x import a as b`` becomes ``b = a``; ``from . import x as y``, a module used
  for its attributes, becomes the bundle itself);
- the set's other modules import from the bundle instead (``from .session import
  Session`` -> ``from ._session import Session``; ``from . import packet as pk`` ->
  ``from . import _session as pk``).

The build stops with the reason when the members cannot share one namespace: a top-level
name two members bind differently, an import it cannot rewrite, a member's import of a
later member at the top level. Only the board's build bundles: the debugging build
(``SOURCE_LINES=1``) keeps each module, with its lines.
"""

import ast

BUNDLE = "ovpnkx._session"
# in dependency order: those a session imports after the transport is open, none unloaded
MEMBERS = ("ovpnkx.keystate", "ovpnkx.timers", "ovpnkx.keysource", "ovpnkx.packet", "ovpnkx.reliable",
           "ovpnkx.events", "ovpnkx.control", "ovpnkx.multi", "ovpnkx.tlswrap", "ovpnkx.sessionconfig",
           "ovpnkx.session")
_SELF = "_bundle_self"  # the bundle module, for a member imported as a module (``pk.SID_SIZE``)


class BundleError(Exception):
    """The members cannot be one module as they are written."""


def _target(module: str, node: ast.ImportFrom) -> "str | None":
    """The absolute module an ``from ... import`` reads from (None: not of the package)."""
    if node.level == 0:
        return node.module
    package = module.rsplit(".", 1)[0] if node.level == 1 else None
    if package is None:
        return None
    return package + "." + node.module if node.module else package


def _from_imports(module: str, tree: ast.Module, members: "frozenset | set"):
    """Each ``from ... import`` of ``module`` and the module it reads from; an ``import`` of a
    member is refused (its dotted name would not exist on the board)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in members:
                    raise BundleError("%s line %d: import %s (write from ... import)" % (module, node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom):
            yield node, _target(module, node)


def _replace(lines: list, node: ast.stmt, text: str) -> None:
    """Put ``text`` (one line, at the statement's indent) where ``node`` is, blank lines
    after it for the rest of its lines."""
    first = lines[node.lineno - 1]
    indent = first[: len(first) - len(first.lstrip())]
    if node.col_offset != len(indent):
        raise BundleError("line %d: an import that shares its line with other code" % node.lineno)
    lines[node.lineno - 1] = indent + text + "\n"
    for i in range(node.lineno, node.end_lineno):
        lines[i] = "\n"


def _member_source(module: str, source: str, members: "set[str]") -> "tuple[str, set, set]":
    """A member's source with its imports of members gone; (source, the members it imports
    at the top level, the names those imports bound)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    top_imports: set = set()
    dropped: set = set()
    for node, target in _from_imports(module, tree, members):
        kept, assigns = [], []
        for alias in node.names:
            if target is not None and target + "." + alias.name in members:  # from . import packet as pk: the bundle is that module now
                assigns.append("%s = %s" % (alias.asname or alias.name, _SELF))
            elif target in members:
                if alias.asname and alias.asname != alias.name:
                    assigns.append("%s = %s" % (alias.asname, alias.name))
                dropped.add(alias.asname or alias.name)
            else:
                kept.append(alias)
        if len(kept) == len(node.names):
            continue
        if node in tree.body and target is not None:  # a top-level import: that member's code must have run already
            top_imports.update([target] if target in members else
                               [target + "." + a.name for a in node.names if target + "." + a.name in members])
        stmts = assigns
        if kept:
            stmts = [ast.unparse(ast.ImportFrom(module=node.module, names=kept, level=node.level))] + stmts
        _replace(lines, node, "; ".join(stmts) or "pass")
    for node in ast.walk(tree):
        if isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in dropped:
                    raise BundleError("%s line %d: del of %s, which a member import bound" % (module, node.lineno, target.id))
    # what only a module has: its docstring and __all__ (the bundle has neither)
    for node in tree.body:
        if (node is tree.body[0] and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)) or \
                (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)):
            _replace(lines, node, "pass")
    return "".join(lines), top_imports, dropped


def _constant(value: ast.expr) -> object:
    """The value of ``N`` or ``const(N)`` (None: something else)."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "const" \
            and len(value.args) == 1:
        value = value.args[0]
    return value.value if isinstance(value, ast.Constant) and value.value is not None else None


def _bindings(tree: ast.Module, constants: "dict | None" = None) -> "dict[str, str]":
    """Top-level name -> what binds it: "import module.name" for an import, "alias name",
    "constant value", else "own"; ``constants`` gets the statements of the constants."""
    bound = {}
    if constants is None:
        constants = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound[alias.asname or alias.name] = "import %s.%s" % ("." * node.level + (node.module or ""), alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = "import " + alias.name
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound[node.name] = "own"
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            bound[node.targets[0].id] = "alias " + node.value.id  # a member import's, as rewritten
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, (ast.Constant, ast.Call)) and _constant(node.value) is not None:
            bound[node.targets[0].id] = "constant %r" % (_constant(node.value),)  # the same in two: one
            constants[node.targets[0].id] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        bound[name.id] = "own"
        elif isinstance(node, (ast.If, ast.Try)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.FunctionDef, ast.ClassDef)):
                    bound.setdefault(inner.name, "own")
                elif isinstance(inner, ast.ImportFrom):
                    for alias in inner.names:
                        bound.setdefault(alias.asname or alias.name,
                                         "import %s.%s" % ("." * inner.level + (inner.module or ""), alias.name))
                elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                    bound.setdefault(inner.id, "own")
    return bound


def bundle_source(sources: "dict[str, str]", order: "tuple" = MEMBERS) -> str:
    """The bundle's source from the members' (module name -> source), in ``order``."""
    members = set(order)
    seen = {"_bundle_sys": ("the bundle", "own"), _SELF: ("the bundle", "own")}  # name -> (member, binding)
    parts = ["import sys as _bundle_sys\n", "%s = _bundle_sys.modules[__name__]\n" % _SELF]
    before: set = set()
    for module in order:
        text, imports, _ = _member_source(module, sources[module], members)
        later = imports - before
        if later:
            raise BundleError("%s imports %s at its top level, which comes after it in the bundle"
                              % (module, ", ".join(sorted(later))))
        constants: dict = {}
        lines = text.splitlines(keepends=True)
        for name, how in _bindings(ast.parse(text), constants).items():
            other = seen.get(name)
            if other is not None and (how == "own" or other[1] != how):
                raise BundleError("%s and %s both bind %s at their top level" % (other[0], module, name))
            if other is not None and name in constants:  # the same constant again: once is enough
                _replace(lines, constants[name], "pass")  # (MicroPython refuses a const() twice)
            seen[name] = (module, how)
        text = "".join(lines)
        parts.append("# ---- %s\n" % module)
        parts.append(text if text.endswith("\n") else text + "\n")
        before.add(module)
    return "".join(parts)


def rewrite_importer(module: str, source: str, members: "frozenset | set" = frozenset(MEMBERS),
                     name: str = BUNDLE) -> str:
    """A module of the set outside the bundle ``name``, reading the members from it."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    pkg, short = name.rsplit(".", 1)
    for node, target in _from_imports(module, tree, members):
        if target in members:
            if node.level and _target(module, ast.ImportFrom(module=None, names=[], level=node.level)) != pkg:
                raise BundleError("%s line %d: a relative import of %s from outside %s" % (module, node.lineno, target, pkg))
            new = ast.ImportFrom(module=short if node.level else name, names=node.names, level=node.level)
            _replace(lines, node, ast.unparse(new))
        elif target == pkg and any(pkg + "." + a.name in members for a in node.names):
            names = [ast.alias(name=short, asname=a.asname or a.name) if pkg + "." + a.name in members else a
                     for a in node.names]
            _replace(lines, node, ast.unparse(ast.ImportFrom(module=node.module, names=names, level=node.level)))
    return "".join(lines)


def bundle(sources: "dict[str, str]", order: "tuple" = MEMBERS, name: str = BUNDLE) -> "dict[str, str]":
    """The set's sources (module name -> source) as the board gets them: the members
    (``order``) as one module ``name``, the others importing from it."""
    members = frozenset(order)
    out = {module: rewrite_importer(module, text, members, name) for module, text in sources.items()
           if module not in members}
    out[name] = bundle_source(sources, order)
    return out
