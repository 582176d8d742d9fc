"""The sources the board's build compiles: the firmware's modules as a board gets them.

``tools/flash.py`` compiles them and ``tools/size.py`` measures them, so both take them
from here: the core's integer constants written as numbers (``const_inline``), then the
error messages moved to the flash's catalog (``message_catalog``). Line numbers stay.
"""

import os

import const_inline  # tools/const_inline.py, beside this script
import message_catalog  # tools/message_catalog.py


def module_name(rel: str) -> str:
    """``ovpnkx/packet.py`` -> ``ovpnkx.packet``; a package's ``__init__.py`` -> its name."""
    name = rel[:-3].replace(os.sep, ".").replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def rewrite(files: "list[tuple[str, str, str]]") -> list:
    """Write each (path under firmware/, source path, destination path) of the board's set
    as the board's build compiles it. Returns the catalog of the messages moved out
    (``message_catalog.catalog_text`` writes it)."""
    sources = {}
    for rel, src, _ in files:
        with open(src, encoding="utf-8") as f:
            sources[module_name(rel)] = f.read()
    sources = const_inline.inline(sources)
    catalog: list = []
    for rel, _, dst in files:
        source = sources[module_name(rel)]
        try:
            source = message_catalog.extract(source, catalog)
        except SyntaxError:  # copied as it is, for mpy-cross to report
            pass
        with open(dst, "w", encoding="utf-8") as f:
            f.write(source)
    return catalog
