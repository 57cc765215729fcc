"""Human translations from gettext catalogs (``.po`` files): the sentence pairs of the embedded default data.

Large translated projects ship their catalogs in their wheels (``*/locale/fr/LC_MESSAGES/*.po``): every
entry is an English user-interface string (``msgid``) and a translator's rendering (``msgstr``).
:func:`read_po` parses a catalog; :func:`catalog_pairs` keeps the entries that are usable sentence pairs:

- not fuzzy (a translator marked it unchecked), not plural (``msgid_plural``), not obsolete (``#~``),
  and translated (non-empty ``msgstr``);
- no placeholders or markup: strings with ``%``, ``{``, ``}``, ``<``, ``>``, ``&``, ``_`` or a newline are
  *dropped* (not kept as tokens), so every pair is plain text a person would type;
- between ``min_words`` and ``max_words`` whitespace-separated words on both sides;
- not left untranslated (a target equal to its source, e.g. "Email" -> "Email", is dropped: the copy
  baseline's exact match is 0 by this rule, its BLEU and chrF count the shared words).

Pure Python: no Lightning, no MLflow, no gettext package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cnnrnn.errors import UserError

PLACEHOLDER = re.compile(r"[%{}<>&_\n\\|]|\[\[|\]\]")
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


@dataclass
class Entry:
    """One catalog entry. ``msgstr`` is the singular translation (``msgstr[0]`` of a plural entry)."""

    msgid: str = ""
    msgstr: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags


def unquote(text: str, where: str) -> str:
    """The content of one C-quoted .po string (``"..."`` with backslash escapes)."""
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise UserError(f"{where}: expected a quoted string, got {text[:60]!r}; the catalog is malformed")
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def read_po(text: str, name: str = "catalog") -> list[Entry]:
    """Every entry of a ``.po`` catalog (the header entry, ``msgid ""``, left out)."""
    entries: list[Entry] = []
    entry, key, started = Entry(), None, False

    def finish():
        nonlocal entry, key, started
        if started and entry.msgid:
            entries.append(entry)
        entry, key, started = Entry(), None, False

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name} line {number}"
        obsolete = line.startswith("#~") and not line.startswith("#~|")  # "#~|": an obsolete entry's previous msgid
        if obsolete:
            line = line[2:].strip()
        if not line:
            finish()
            continue
        if line.startswith("#"):
            if key is not None and key != "msgctxt":  # a comment after a complete entry starts the next one
                finish()
            if line.startswith("#,"):
                entry.flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
            continue
        if line.startswith('"'):
            if key is None:
                raise UserError(f"{where}: a continued string with no msgid/msgstr before it; the catalog is malformed")
            value = unquote(line, where)
            if key == "msgid":
                entry.msgid += value
            elif key == "msgid_plural":
                entry.msgid_plural = (entry.msgid_plural or "") + value
            elif key == "msgctxt":
                entry.msgctxt = (entry.msgctxt or "") + value
            elif key in ("msgstr", "msgstr[0]"):
                entry.msgstr += value
            continue
        word, _, rest = line.partition(" ")
        if word in ("msgctxt", "msgid") and key is not None and key.startswith("msgstr"):
            finish()  # entries not separated by a blank line
        if word == "msgctxt":
            entry.msgctxt, key = unquote(rest, where), "msgctxt"
        elif word == "msgid":
            entry.msgid, key = unquote(rest, where), "msgid"
        elif word == "msgid_plural":
            entry.msgid_plural, key = unquote(rest, where), "msgid_plural"
        elif word in ("msgstr", "msgstr[0]"):
            entry.msgstr, key = unquote(rest, where), word
        elif word.startswith("msgstr["):
            key = word  # the other plural forms are not kept
        else:
            raise UserError(f"{where}: unknown keyword {word[:30]!r}; the catalog is malformed")
        entry.obsolete = entry.obsolete or obsolete
        started = True
    finish()
    return entries


def usable(text: str, min_words: int, max_words: int) -> bool:
    return not PLACEHOLDER.search(text) and min_words <= len(text.split()) <= max_words


def clean(text: str) -> str:
    """Whitespace collapsed; non-breaking and narrow spaces (French typography before ``:;?!``) as plain spaces."""
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def catalog_pairs(entries: list[Entry], min_words: int, max_words: int) -> list[tuple[str, str]]:
    """(English, translation) of the usable entries (see the module's rules), in catalog order."""
    pairs = []
    for e in entries:
        if e.fuzzy or e.msgid_plural is not None or e.obsolete or not e.msgstr.strip():
            continue
        source, target = clean(e.msgid), clean(e.msgstr)
        if usable(source, min_words, max_words) and usable(target, min_words, max_words) and source != target:
            pairs.append((source, target))
    return pairs
