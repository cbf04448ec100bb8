"""Docs-build griffe extension: NumPy-style docstrings with reST bits render as Markdown.

mkdocstrings renders docstrings as Markdown, while otdist's docstrings are NumPy-style with a few
reStructuredText constructs.  This extension rewrites each docstring's text once it is loaded,
before mkdocstrings parses it:

* ``.. math::`` blocks become ``$$ ... $$`` blocks and ``:math:`x``` becomes ``$x$``; both are
  turned into ``arithmatex`` elements by ``pymdownx.arithmatex`` and typeset by the KaTeX copy
  served with the site (``docs/assets/katex``).
* ``:func:``, ``:class:``, ``:meth:``, ``:mod:``, ``:attr:``, ``:exc:``, ``:data:`` and ``:obj:``
  roles become mkdocstrings cross-references (links where the target is documented, inline code
  otherwise).
* ``.. note::``-style directives become admonitions.
* ``<`` in prose is escaped, so ``<P, C>`` reads as text rather than as an HTML tag.
* A parameter line naming several parameters (``metric, minkowski_p, **options``) is split into
  one entry per name, so each row of the parameter table gets its own type and default from the
  signature (griffe would give every name the first one's); a prose paragraph left among the
  entries is moved in front of the section instead of becoming bogus parameter rows.

It is loaded by ``mkdocs.yml`` only; the library never imports it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_MATH_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\.\s+math::\s*(?P<rest>.*)$")
_ADMONITION_KINDS = "note|warning|tip|important|caution|danger|hint|attention|seealso"
_ADMONITION_DIRECTIVE = re.compile(rf"^(?P<indent>\s*)\.\.\s+(?P<kind>{_ADMONITION_KINDS})::\s*(?P<rest>.*)$")
_ADMONITION_KIND = {"seealso": "info", "attention": "warning", "caution": "warning", "important": "tip"}
_FENCE = re.compile(r"^\s*(```|~~~)")
_DOCTEST = re.compile(r"^\s*>>>")
_SECTION_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_SPLIT_SECTIONS = {"parameters", "other parameters", "attributes", "keyword arguments", "other arguments"}
_ENTRY_LINE = re.compile(r"^\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*(?:\s*:.*)?$")
_NAMES_LINE = re.compile(r"^(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)+)(?P<type>\s*:.*)?$")
_INLINE = re.compile(
    r"(?P<role>:(?:py:)?(?P<kind>[a-z]+):`(?P<body>[^`]+)`)"
    r"|(?P<link>`(?P<text>[^`<]+?)\s*<(?P<url>[^>`]+)>`__?)"
    r"|(?P<code>``.+?``|`[^`]+`)"
)
_XREF_ROLES = {"func", "class", "meth", "mod", "attr", "exc", "data", "obj", "const", "ref"}
_AUTOLINK = re.compile(r"<(?:https?|mailto|ftp):[^>\s]+>")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index one past the last line of the block opened at ``start`` (deeper-indented or blank)."""
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > indent):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


class RstToMarkdown(griffe.Extension):
    """Rewrite reST constructs of loaded docstrings into the Markdown mkdocstrings renders."""

    def __init__(self) -> None:
        super().__init__()
        self._loader: griffe.GriffeLoader | None = None

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._loader = loader
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object | griffe.Alias, seen: set[str]) -> None:
        if obj.is_alias or obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = self.convert(obj.docstring.value, obj)
        for member in obj.members.values():
            self._walk(member, seen)

    def convert(self, text: str, obj: griffe.Object | None = None) -> str:
        """Return ``text`` with its reST constructs written as Markdown."""
        lines = _normalise_parameter_sections(text.splitlines())
        out: list[str] = []
        i = 0
        in_fence = False
        while i < len(lines):
            line = lines[i]
            if _FENCE.match(line):
                in_fence = not in_fence
                out.append(line)
                i += 1
                continue
            if in_fence:
                out.append(line)
                i += 1
                continue
            if _DOCTEST.match(line):
                while i < len(lines) and lines[i].strip():
                    out.append(lines[i])
                    i += 1
                continue
            math = _MATH_DIRECTIVE.match(line)
            if math:
                indent = math["indent"]
                end = _block_end(lines, i, len(indent))
                body = [math["rest"]] + [part.strip() for part in lines[i + 1 : end]]
                body = [part for part in body if part.strip() and not part.startswith(":")]
                out += ["", f"{indent}$$", *(f"{indent}{part.strip()}" for part in body), f"{indent}$$", ""]
                i = end
                continue
            admonition = _ADMONITION_DIRECTIVE.match(line)
            if admonition:
                indent = admonition["indent"]
                end = _block_end(lines, i, len(indent))
                kind = _ADMONITION_KIND.get(admonition["kind"], admonition["kind"])
                body = ([admonition["rest"]] if admonition["rest"] else []) + [
                    part.strip() for part in lines[i + 1 : end]
                ]
                out += ["", f"{indent}!!! {kind}", *(f"{indent}    {self._inline(part, obj)}" for part in body), ""]
                i = end
                continue
            out.append(self._inline(line, obj))
            i += 1
        return "\n".join(out)

    def _inline(self, line: str, obj: griffe.Object | None) -> str:
        pieces: list[str] = []
        pos = 0
        for match in _INLINE.finditer(line):
            pieces.append(_escape_prose(line[pos : match.start()]))
            pos = match.end()
            if match["code"]:
                pieces.append(match["code"])
            elif match["link"]:
                pieces.append(f"[{_escape_prose(match['text'])}]({match['url']})")
            elif match["kind"] == "math":
                pieces.append(f"${match['body'].strip()}$")
            elif match["kind"] in _XREF_ROLES:
                pieces.append(self._xref(match["body"], obj))
            else:
                pieces.append(f"`{match['body']}`")
        pieces.append(_escape_prose(line[pos:]))
        return "".join(pieces)

    def _xref(self, body: str, obj: griffe.Object | None) -> str:
        titled = re.match(r"^(?P<title>.+?)\s*<(?P<target>[^>]+)>$", body)
        target = titled["target"] if titled else body
        short = target.startswith("~")
        target = target.lstrip("~").strip()
        if titled:
            title = titled["title"]
        elif short:
            title = target.rsplit(".", 1)[-1]
        else:
            title = target.lstrip(".")
        identifier = self._resolve(target, obj)
        if identifier is None:
            return f"`{title}`"
        return f'<autoref identifier="{identifier}" optional><code>{_html_escape(title)}</code></autoref>'

    def _resolve(self, target: str, obj: griffe.Object | None) -> str | None:
        """Full path of ``target`` as seen from ``obj``, preferring the public top-level name."""
        if self._loader is None or obj is None:
            return None
        collection = self._loader.modules_collection
        if collection is None:
            return None
        candidates: list[str] = []
        if target.startswith("."):
            module = obj.module
            base = module if module.is_package else module.parent
            for _ in range(len(target) - len(target.lstrip(".")) - 1):
                base = base.parent if base is not None else None
            if base is not None:
                candidates.append(f"{base.path}.{target.lstrip('.')}")
        else:
            scope: Any = obj
            while scope is not None:
                candidates.append(f"{scope.path}.{target}")
                scope = scope.parent
            candidates.append(target)
        for path in candidates:
            try:
                found = collection[path]
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            return self._public_path(found, collection)
        return None

    @staticmethod
    def _public_path(found: Any, collection: Any) -> str:
        """The root package's public alias of ``found`` when there is one, else its path."""
        try:
            canonical = found.final_target.path if found.is_alias else found.path
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return found.path
        root = canonical.split(".", 1)[0]
        public = f"{root}.{canonical.rsplit('.', 1)[-1]}"
        try:
            member = collection[public]
            member_path = member.final_target.path if member.is_alias else member.path
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return canonical
        return public if member_path == canonical else canonical


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_prose(text: str) -> str:
    """Escape ``<`` in prose (``<P, C>`` is text, not a tag), keeping ``<https://...>`` autolinks."""
    pieces: list[str] = []
    pos = 0
    for match in _AUTOLINK.finditer(text):
        pieces.append(text[pos : match.start()].replace("<", "&lt;"))
        pieces.append(match.group())
        pos = match.end()
    pieces.append(text[pos:].replace("<", "&lt;"))
    return "".join(pieces)


def _normalise_parameter_sections(lines: list[str]) -> list[str]:
    """One entry per name in parameter-like sections, and their prose moved out of the table.

    ``a, b : T`` becomes an entry for ``a`` and one for ``b`` (same type and description).  A paragraph
    at the entries' indentation that is not an entry header (``Every argument is checked first.``)
    is prose the author put after the entries; griffe would read each of its lines as a parameter,
    so it is moved in front of the section header, where it renders as text.
    """
    out: list[str] = []
    section = None
    header_at = 0
    base_indent = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and _SECTION_UNDERLINE.match(lines[i + 1]):
            section = line.strip().lower()
            base_indent = _indent_of(line)
            header_at = len(out)
            out += [line, lines[i + 1]]
            i += 2
            continue
        in_entries = section in _SPLIT_SECTIONS and line.strip() and _indent_of(line) == base_indent
        if in_entries and not _ENTRY_LINE.match(line.strip()):
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            moved = [*lines[i:end], ""]
            out[header_at:header_at] = moved
            header_at += len(moved)
            i = end
            continue
        entry = _NAMES_LINE.match(line.strip()) if in_entries else None
        if entry:
            end = _block_end(lines, i, base_indent)
            description = lines[i + 1 : end]
            for name in re.split(r"\s*,\s*", entry["names"]):
                out.append(" " * base_indent + name + (entry["type"] or ""))
                out += description
            i = end
            continue
        out.append(line)
        i += 1
    return out
