"""The sources the board's build compiles: the firmware's modules as a board gets them.

``tools/flash.py`` compiles them and ``tools/size.py`` measures them, so both take them
from here, in this order:

1. the core's integer constants written as numbers (``const_inline``);
2. the modules a session always holds written as one (``bundle``), unless the build is
   for debugging;
3. its private names made short (``short_names``), unless the build is for debugging;
4. its error messages moved to the flash's catalog (``message_catalog``).

Line numbers stay, but in the bundle.
"""

import ast
import glob
import os
import tokenize

import bundle  # tools/bundle.py, beside this script
import const_inline  # tools/const_inline.py
import message_catalog  # tools/message_catalog.py
import short_names  # tools/short_names.py

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# code flashed beside the packages, compiled on its own: its names keep their spelling
BESIDE = [os.path.join(REPO, "firmware", "main.py")] + sorted(glob.glob(os.path.join(REPO, "boards", "*", "noise.py")))


def module_name(rel: str) -> str:
    """``ovpnkx/packet.py`` -> ``ovpnkx.packet``; a package's ``__init__.py`` -> its name."""
    name = rel[:-3].replace(os.sep, ".").replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _beside_words() -> "set[str]":
    """The names in the code flashed beside the set, and the words in its strings."""
    words = set()
    for path in BESIDE:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        words.update(word for _, _, word in short_names.identifiers(source))
        words |= const_inline.string_words(ast.parse(source))
    return words


def rewrite(files: "list[tuple[str, str, str]]", short: bool = True, bundled: bool = False) -> "tuple[list, dict]":
    """Write each (path under firmware/, source path, destination path) of the board's set
    as the board's build compiles it; ``short=False`` keeps the private names (the
    debugging build). With ``bundled``, ``files`` loses the bundle's members and gains the
    bundle (``tools/bundle.py``), written beside the package's other files. Returns the
    catalog of the messages moved out (``message_catalog.catalog_text`` writes it) and each
    module's map of short names (``short_names.map_text`` writes them)."""
    sources = {}
    for rel, src, _ in files:
        with open(src, encoding="utf-8") as f:
            sources[module_name(rel)] = f.read()
    beside = _beside_words()
    sources = const_inline.inline(sources, beside)
    if bundled:
        try:
            sources = bundle.bundle(sources)
        except (bundle.BundleError, SyntaxError) as exc:
            raise SystemExit("flash: cannot bundle %s: %s" % (bundle.BUNDLE, exc))
        pkg, name = bundle.BUNDLE.split(".")
        dst = [d for rel, _, d in files if rel.startswith(pkg + "/")][0]
        files[:] = [f for f in files if module_name(f[0]) not in bundle.MEMBERS]
        files.append((pkg + "/" + name + ".py", "", os.path.join(os.path.dirname(dst), name + ".py")))
    maps: dict = {}
    if short:
        try:
            maps = short_names.names_map(sources, beside)
        except SyntaxError:  # a module that does not parse: mpy-cross reports it
            pass
    catalog: list = []
    for rel, _, dst in files:
        source = sources[module_name(rel)]
        mapping = maps.get(module_name(rel))
        try:
            source = message_catalog.extract(short_names.rename(source, mapping) if mapping else source, catalog)
        except (SyntaxError, tokenize.TokenError):  # copied as it is, for mpy-cross to report
            pass
        with open(dst, "w", encoding="utf-8") as f:
            f.write(source)
    return catalog, maps
