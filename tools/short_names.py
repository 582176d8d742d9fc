"""The board's build gives the core's private names two or three letters.

Every name a loaded ``.mpy`` uses is interned on the board for good (its length + 7 B in
the qstr pool) and stored in the file, which stock firmware keeps in the GC heap while
the module is loaded. The core's private names (``self._send_queue``, ``_open_key_state``)
are ~400 names of ~8 letters; as ``_a``, ``_b``, ... ``_a0`` they take ~2 KB less. So
the flash build (``tools/board_source.py``) renames, consistently over the whole set of
modules a board gets, every name that

- starts with one ``_`` (not ``__``: dunders and CPython's class-private names stay) and
  is longer than three letters,
- is bound somewhere in the set (a ``def``/``class``, an assignment to it or to an
  attribute of that name, an argument, an ``import ... as``): a name the set only reads
  is someone else's (``sys.implementation._machine``),
- is not a module's name (``_compat``), and
- appears in no string of the set (``getattr(x, "_name")`` would miss it), in no
  f-string, nor in ``extra_words`` (code flashed beside the set: the board's ``noise.py``).

The new names are the shortest that appear nowhere in the set, the most used first. A
name that only one module uses, and never as an attribute or a keyword (a private
function, class or global of that module, or an argument of its functions), lives in that
module's namespaces only: such names take short names from a sequence that starts again
in each module, so that ``_a``, interned once, can be one module's ``_parse_line`` and
another's ``_fail``; so do the public names that only functions bind (arguments, locals,
nested defs: ``client_random1`` of ``prf.openvpn_key_expansion``) where no module uses
them otherwise (as an attribute, a keyword, a module's or a class's name, an import, a
builtin). Every other name
(attributes: which object has one is not known here) has its short name in the whole set,
and a module's own names skip only the short names of those the module uses: on a board
the count of names matters more than their length (py/qstr.c allocates the pools that
hold them twice as large each time).

Only identifiers are touched (``tokenize``), in place, so lines stay. ``make flash
SOURCE_LINES=1`` (the debugging build) keeps the source's names, and the map from short
name to source name is written beside the build (``names.map``) to read a traceback.
"""

import ast
import builtins
import io
import string
import tokenize

import const_inline  # tools/const_inline.py: bound_names, string_words

_FIRST = string.ascii_lowercase + string.ascii_uppercase
_BUILTINS = set(dir(builtins)) | {"const"}  # a function may read one by the name it shadows elsewhere
_NEXT = _FIRST + string.digits


def _bound(tree: ast.AST) -> "set[str]":
    """The names the module binds (``const_inline.bound_names``), the attributes it assigns
    and the names it imports ``as``."""
    names = set(const_inline.bound_names(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            names.add(node.attr)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
    return names


def _module_words(tree: ast.AST) -> "set[str]":
    """The parts of every module name the module imports (``from ._compat import``)."""
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            words.update(node.module.split("."))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                words.update(alias.name.split("."))
    return words


def _in_fstrings(tree: ast.AST) -> "set[str]":
    """Names used inside f-strings: before Python 3.12 ``tokenize`` gives an f-string as
    one STRING token, so ``rename`` could not reach them."""
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name):
                    words.add(inner.id)
                elif isinstance(inner, ast.Attribute):
                    words.add(inner.attr)
    return words


def identifiers(source: str) -> "list[tuple[int, int, str]]":
    """(row, column, name) of every identifier token of the source."""
    return [(tok.start[0], tok.start[1], tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.NAME]


def _short(taken: "set[str]"):
    """``_a``, ``_b``, ... ``_Z``, ``_a0``, ... : the names not in ``taken``."""
    length = 1
    while True:
        for index in range(len(_FIRST) * len(_NEXT) ** (length - 1)):
            tail = _FIRST[index % len(_FIRST)]
            index //= len(_FIRST)
            for _ in range(length - 1):
                tail += _NEXT[index % len(_NEXT)]
                index //= len(_NEXT)
            name = "_" + tail
            if name not in taken:
                yield name
        length += 1


def _shared_words(trees: "dict[str, ast.AST]") -> "set[str]":
    """Names some module uses as an attribute, a keyword argument or an imported name:
    they may reach another module's namespace or object."""
    words = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                words.add(node.attr)
            elif isinstance(node, ast.keyword) and node.arg:
                words.add(node.arg)
            elif isinstance(node, ast.alias):
                words.add(node.name)
    return words


def _scoped(tree: ast.AST) -> "tuple[set[str], set[str]]":
    """(names a function of the module binds: its arguments, locals, nested defs,
    ``except ... as``; names bound or read at the module's or a class's level, declared
    ``global``/``nonlocal``, or imported)."""
    local: "set[str]" = set()
    outer: "set[str]" = set()

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = local if scope == "function" else outer
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                here.add(child.name)
                visit(child, "class" if isinstance(child, ast.ClassDef) else "function")
            elif isinstance(child, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                visit(child, "function")
            elif isinstance(child, ast.arg):
                local.add(child.arg)
            elif isinstance(child, ast.Name):
                if scope != "function" or not isinstance(child.ctx, ast.Load):
                    here.add(child.id)  # a function's read is of its own, an outer or a builtin name
            elif isinstance(child, (ast.Global, ast.Nonlocal)):
                outer.update(child.names)
            elif isinstance(child, ast.alias):
                outer.add(child.asname or child.name.split(".")[0])
            else:
                if isinstance(child, ast.ExceptHandler) and child.name:
                    here.add(child.name)
                visit(child, scope)

    visit(tree, "module")
    return local, outer


def _function_own(trees: "dict[str, ast.AST]", kept: "set[str]", shared_words: "set[str]") -> "set[str]":
    """Public names that every module using them uses only inside its functions (arguments,
    locals, nested defs), never as a keyword, an attribute, an import, a builtin or a
    module's or class's name: such a name is its functions' own in each module, as a private
    one of that module is."""
    local: "set[str]" = set()
    outer: "set[str]" = set()
    for tree in trees.values():
        mine, theirs = _scoped(tree)
        local |= mine
        outer |= theirs
    return {n for n in local - outer - kept - shared_words - _BUILTINS
            if not n.startswith("_") and n not in ("self", "cls")}


def names_map(sources: "dict[str, str]", extra_words: "set[str]" = frozenset()) -> "dict[str, dict[str, str]]":
    """Module name -> (source name -> short name) for each module of the set (module name ->
    source): the names shared by the set, renamed alike in every module, and the module's own."""
    trees = {name: ast.parse(source) for name, source in sources.items()}
    bound: "set[str]" = set()
    kept = set(extra_words)
    words: "dict[str, int]" = {}
    used_in: "dict[str, set[str]]" = {}  # name -> the modules that use it
    for module, tree in trees.items():
        bound |= _bound(tree)
        kept |= _module_words(tree) | set(module.split(".")) | const_inline.string_words(tree) | _in_fstrings(tree)
        for _, _, word in identifiers(sources[module]):
            words[word] = words.get(word, 0) + 1
            used_in.setdefault(word, set()).add(module)
    # "_" and names of two letters or three are as short already
    renamed = sorted((n for n in bound if n.startswith("_") and not n.startswith("__") and len(n) > 3 and n not in kept),
                     key=lambda n: (-words.get(n, 0), n))
    shared_words = _shared_words(trees)
    own = {n for n in renamed if len(used_in.get(n, ())) == 1 and n not in shared_words}
    functions_own = _function_own(trees, kept, shared_words)
    own |= functions_own
    renamed += sorted(functions_own, key=lambda n: (-words.get(n, 0), n))
    fresh = _short(set(words) | kept)
    shared = {name: next(fresh) for name in renamed if name not in own}
    maps = {}
    for module in sources:
        # each module's own names start the sequence again, past only the short names of the
        # shared names this module uses: an own name is never an attribute, so it may be
        # another module's shared one (one name interned for both)
        fresh = _short(set(words) | kept | {short for name, short in shared.items() if module in used_in[name]})
        mine = dict(shared)
        mine.update((name, next(fresh)) for name in renamed if name in own and module in used_in[name])
        maps[module] = mine
    return maps


def rename(source: str, mapping: "dict[str, str]") -> str:
    """The source with every identifier of ``mapping`` replaced (strings and comments untouched)."""
    lines = source.splitlines(keepends=True)
    for row, col, word in reversed(identifiers(source)):
        new = mapping.get(word)
        if new is not None:
            line = lines[row - 1]
            lines[row - 1] = line[:col] + new + line[col + len(word):]
    return "".join(lines)


def map_text(maps: "dict[str, dict[str, str]]") -> str:
    """``names.map``: one ``short source`` line per name shared by the set (it is in every
    module's map), and one ``short source module`` line per name of one module, which in
    that module stands for it (a shared name's short one may be a module's own too); sorted
    by short name."""
    shared = set.intersection(*(set(mapping) for mapping in maps.values())) if maps else set()
    lines = {(short, name, "" if name in shared else module)
             for module, mapping in maps.items() for name, short in mapping.items()}
    return "".join(("%s %s %s" % line).rstrip() + "\n" for line in sorted(lines))
