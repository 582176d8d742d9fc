"""The board's build writes the core's integer constants as numbers, not names.

``packet.P_CONTROL_V1`` costs a board more than the 4 it stands for: stock firmware loads
every ``.mpy`` into the GC heap, where each public module-level name is interned for good
(its length + 7 B in the qstr pool), takes a slot in its module's dict, and each use is a
global load and an attribute lookup in the bytecode. MicroPython's ``const()`` inlines a
value only inside its own module, and only a private (``_NAME``) one leaves no name behind.
So the flash build (``tools/flash.py``, and ``tools/size.py`` to measure what it ships)
rewrites every module of the board's set:

- a use of a constant of the set, ``mod.NAME`` through a module imported by the usual
  forms (``from . import packet as pk``, ``from ovpnkx import keystate``) or ``NAME``
  imported with ``from .packet import NAME``, or inside its own module, becomes its number;
- the import of a name that no longer has a use is dropped from its ``from ... import``
  (a statement left with no name still imports the module: ``__import__("ovpnkx.x")``);
- the definition goes when the name is left nowhere in the set, neither as a name nor
  as a whole string (``__getattr__`` forwarders name what they forward in strings), and
  stays otherwise; a name among other words of a string (``"S_ERROR S_UNDEF".split()``, a
  table of names for messages) only spells it.

A constant is a module-level ``NAME = <int>`` or ``NAME = const(<int>)`` (``-<int>`` too),
named in upper case (``_NAME`` too), assigned nowhere else in its module nor as an
attribute anywhere in the set, whose value is a small int on a 32-bit port (a big int
would be an object per use); and ``_compat.TYPE_CHECKING`` and ``_compat.MICROPYTHON``,
False and True on every board (``ON_THE_BOARD``). Only the board's build does this; CPython and the tests of the core
on MicroPython run the source. Spans are replaced on their own lines, so line numbers
stay (as in ``message_catalog``).
"""

import ast
import re

SMALL_INT = 1 << 30  # MicroPython's small ints on a 32-bit port: -2**30 <= v < 2**30
# what is known of every board: it runs MicroPython, which has no ``typing``, so
# ``_compat`` sets TYPE_CHECKING False there; as literals, the compiler drops the
# ``if TYPE_CHECKING:`` blocks (imports for annotations) and the CPython branches of
# ``if MICROPYTHON:``, and the names in them are not interned
ON_THE_BOARD = {("ovpnkx._compat", "TYPE_CHECKING"): False, ("ovpnkx._compat", "MICROPYTHON"): True}
_UPPER = re.compile(r"_?[A-Z][A-Z0-9_]*$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _int_value(node: ast.AST) -> "int | None":
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const" \
            and len(node.args) == 1 and not node.keywords:
        node = node.args[0]
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        value = sign * node.value
        if -SMALL_INT <= value < SMALL_INT:
            return value
    return None


def bound_names(tree: ast.AST) -> "list[str]":
    """Every name the module binds or declares global, with repeats (top level and below):
    targets, arguments, defs and classes, ``except ... as``; not its imports."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.append(node.id)
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.extend(node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.append(node.name)
    return names


def collect(trees: "dict[str, ast.Module]") -> "dict[tuple[str, str], int]":
    """(module, NAME) -> value of every constant of the set (see the module's docstring)."""
    found = {}
    for module, tree in trees.items():
        stores = bound_names(tree)
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                value = _int_value(node.value)
                if value is not None and _UPPER.match(name) and stores.count(name) == 1:
                    found[(module, name)] = value
    # assigned as another module's attribute (mod.NAME = ...) anywhere: not a constant
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
                for key in [k for k in found if k[1] == node.attr]:
                    del found[key]
    return found


def _resolve(module: str, level: int, name: "str | None") -> str:
    """The absolute module of ``from <level dots><name> import ...`` inside ``module``."""
    if not level:
        return name or ""
    parts = module.split(".")[:-level]  # a module's own package is one dot up
    return ".".join(parts + ([name] if name else []))


def _bindings(module: str, tree: ast.Module, consts: dict) -> "tuple[dict, dict]":
    """(local name -> module it names, local name -> value of the constant it imports).
    A local name bound to two different things in the module is left out of both."""
    modules: dict = {}
    values: dict = {}
    clash = set()

    def bind(table: dict, local: str, what) -> None:
        if table.get(local, what) != what:
            clash.add(local)
        table[local] = what

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(module, node.level, node.module)
            for alias in node.names:
                local = alias.asname or alias.name
                if (base, alias.name) in consts:
                    bind(values, local, consts[(base, alias.name)])
                else:
                    bind(modules, local, base + "." + alias.name)  # a submodule, or not ours
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bind(modules, alias.asname, alias.name)
    for (owner, name), value in consts.items():
        if owner == module:
            bind(values, name, value)
    for local in clash | (set(modules) & set(values)):
        modules.pop(local, None)
        values.pop(local, None)
    # a name also bound some other way (an assignment, an argument) is not the import's
    stores = bound_names(tree)
    for local in list(values):
        if stores.count(local) > (1 if (module, local) in consts else 0):
            del values[local]
    for local in list(modules):
        if local in stores:
            del modules[local]
    return modules, values


def _literal(value: int) -> str:
    return repr(value) if value >= 0 or isinstance(value, bool) else "(-%d)" % -value


class _Module:
    """One module's source, its tree and the spans to replace in it."""

    def __init__(self, name: str, source: str):
        self.name = name
        self.tree = ast.parse(source)
        data = source.encode()
        self.data = data
        self.line_starts = [0]
        for line in data.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))
        self.edits: "list[tuple[int, int, str]]" = []

    def span(self, node: ast.AST) -> "tuple[int, int]":
        start = self.line_starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.line_starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def replace(self, node: ast.AST, text: str) -> None:
        start, end = self.span(node)
        old = self.data[start:end]
        self.edits.append((start, end, text + "\n" * (old.count(b"\n") - text.count("\n"))))

    def rewritten(self) -> str:
        data = self.data
        for start, end, text in sorted(self.edits, reverse=True):
            data = data[:start] + text.encode() + data[end:]
        return data.decode()


def _docstrings(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _inline_uses(mod: _Module, consts: dict) -> "set[str]":
    """Replace the module's uses of constants with numbers; the local names now unused."""
    modules, values = _bindings(mod.name, mod.tree, consts)
    kept = set()
    skip = set()  # the Name inside an inlined mod.NAME
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name):
            owner = modules.get(node.value.id)
            if owner is not None and (owner, node.attr) in consts:
                mod.replace(node, _literal(consts[(owner, node.attr)]))
                skip.add(id(node.value))
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and id(node) not in skip:
            if node.id in values:
                mod.replace(node, _literal(values[node.id]))
            else:
                kept.add(node.id)
    return {name for name in values if name not in kept}


def _wanted(modules: "dict[str, _Module]", consts: dict) -> set:
    """(module, name) of every name that some module of the set takes from another by
    ``from module import name`` or ``module.name``, and is not a constant defined there:
    an import that re-exports a constant must stay."""
    wanted = set()
    for mod in modules.values():
        aliases = _bindings(mod.name, mod.tree, consts)[0]
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(mod.name, node.level, node.module)
                wanted.update((base, a.name) for a in node.names)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                wanted.add((aliases[node.value.id], node.attr))
    return wanted - set(consts)


def _drop_imports(mod: _Module, consts: dict, unused: "set[str]", keep_names: set) -> None:
    """Take the constants no longer used out of the module's ``from ... import`` lists,
    unless another module takes the name from this one (``keep_names``: (module, name))."""
    unused = {name for name in unused if (mod.name, name) not in keep_names}
    for node in ast.walk(mod.tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = _resolve(mod.name, node.level, node.module)
        keep = [a for a in node.names if not ((base, a.name) in consts and (a.asname or a.name) in unused)]
        if len(keep) == len(node.names):
            continue
        if keep:
            names = ", ".join(a.name + (" as " + a.asname if a.asname else "") for a in keep)
            text = "from %s%s import %s" % ("." * node.level, node.module or "", names)
        else:  # the module is still imported, as before: its import may be what loads it
            text = "import %s" % base
            if "." in base:  # binds the package's name; keep it out of the module's globals
                text = "__import__(%r)" % base
        mod.replace(node, text)


def _strings(tree: ast.AST) -> "list[str]":
    """The module's strings, docstrings (which mpy-cross drops) left out."""
    docs = _docstrings(tree)
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


def string_words(tree: ast.AST) -> "set[str]":
    """The words inside the module's strings, docstrings left out."""
    return {word for text in _strings(tree) for word in _WORD.findall(text)}


def string_names(tree: ast.AST) -> "set[str]":
    """The module's strings that are a name, whole (``getattr(m, "NAME")``, a forwarder's
    tuple of names): what may look a constant up by its name. A name among other words (a
    table of names for messages, ``"S_ERROR S_UNDEF ...".split()``) only spells it."""
    return {text for text in _strings(tree) if _WORD.fullmatch(text)}


def _left(modules: "dict[str, _Module]") -> "set[str]":
    """Every name still in the rewritten set: names, attributes, imports, strings that are a name."""
    words = set()
    for mod in modules.values():
        tree = ast.parse(mod.rewritten())
        words.update(string_names(tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
                words.add(node.id)
            elif isinstance(node, ast.Attribute):
                words.add(node.attr)
            elif isinstance(node, ast.alias):
                words.add(node.name)
                words.add(node.asname or "")
    return words


def inline(sources: "dict[str, str]", beside: "set[str]" = frozenset()) -> "dict[str, str]":
    """The set's sources (module name -> source) with its integer constants inlined.
    ``beside``: the words of code flashed beside the set (a board's ``noise.py``), whose
    imports from the set must keep working. A module that does not parse is returned as
    it is, for mpy-cross to report."""
    modules = {}
    for name, source in sources.items():
        try:
            modules[name] = _Module(name, source)
        except SyntaxError:
            pass
    beside = set(beside)
    consts = collect({name: mod.tree for name, mod in modules.items()})
    consts.update((key, value) for key, value in ON_THE_BOARD.items() if key[0] in modules)
    wanted = _wanted(modules, consts)
    # a string that is a name may be looked up by it (a module's __getattr__ forwarding)
    named = {(module, word) for module in modules for word in string_names(modules[module].tree) | beside}
    for mod in modules.values():
        _drop_imports(mod, consts, _inline_uses(mod, consts), wanted | named)
    # the definition's own target is not a use (a Store), so it is not in _left's words
    # unless something else still names the constant
    left = _left(modules) | beside
    for mod in modules.values():
        for node in mod.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if (mod.name, name) in consts and name not in left:
                    mod.replace(node, "")
    out = dict(sources)
    out.update({name: mod.rewritten() for name, mod in modules.items()})
    return out
