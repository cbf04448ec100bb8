"""The built documentation site reads right in a browser.

The site is built once (``mkdocs build --strict`` into a temporary folder) and every HTML page is
scanned as a browser would read it: no reStructuredText left raw (``.. math::``, ``:func:``...),
no LaTeX outside the elements the math renderer typesets, no prose eaten as an HTML tag (``<P, C>``),
and no math renderer fetched from another site.  The parameter tables of ``otdist.transport`` and
``otdist.wasserstein`` are compared with the functions' signatures read by ``inspect``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]' to build the docs site")

import otdist  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILD_TIMEOUT_S = 300

# Text a reader should never see: reST markup, and LaTeX outside the math elements.
RAW_REST = re.compile(r"\.\.\s+[a-z-]+::|:(?:py:)?(?:func|class|meth|mod|attr|exc|data|obj|math|ref):`")
RAW_LATEX = re.compile(r"\\[A-Za-z]{2,}|\\[()\[\]]|\$\$")
# Elements whose text is code or is typeset as math (or is not text at all).
EXEMPT_TAGS = {"code", "pre", "script", "style", "textarea", "kbd", "samp"}
EXEMPT_CLASSES = {"arithmatex", "katex", "katex-display"}
KNOWN_TAGS = set(
    """a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite
    code col colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure
    footer form h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li link
    main map mark menu meta meter nav noscript object ol optgroup option output p param picture pre progress
    q rp rt ruby s samp script search section select slot small source span strong style sub summary sup
    table tbody td template textarea tfoot th thead time title tr track u ul var video wbr
    svg path g circle rect line polyline polygon ellipse defs use symbol clippath lineargradient
    radialgradient stop mask text tspan title desc
    math semantics annotation mrow mi mo mn msup msub msubsup mfrac msqrt mroot mtext mspace mtable mtr mtd
    mover munder munderover mpadded mphantom menclose mstyle""".split()
)


CAMEL_CASE_SVG_TAGS = {"clippath", "lineargradient", "radialgradient"}


class _PageScanner(HTMLParser):
    """Collect the text a reader sees outside code and math, and every tag name."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.prose: list[str] = []
        self.unknown_tags: list[str] = []
        self.script_sources: list[str] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        raw = self.get_starttag_text() or tag
        # Generated markup is lower case: "<P C>" in prose parses as a <p> tag but is written in capitals.
        if tag not in KNOWN_TAGS or (raw[1:2].isupper() and tag not in CAMEL_CASE_SVG_TAGS):
            self.unknown_tags.append(raw)
        if tag == "script" and attributes.get("src"):
            self.script_sources.append(attributes["src"] or "")
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href") or "")
        classes = set((attributes.get("class") or "").split())
        exempt = tag in EXEMPT_TAGS or bool(classes & EXEMPT_CLASSES)
        if exempt or (self.stack and tag == self.stack[-1]):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and tag == self.stack[-1]:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self.stack:
            self.prose.append(data)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per test run (pytest-xdist workers share one build)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "docs-site"
    with FileLock(str(shared / "docs-site.lock")):
        if not (out / "index.html").is_file():
            _build(out)
    return out


def _build(out: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    done = subprocess.run(
        [*command, "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def pages(site: Path) -> dict[str, _PageScanner]:
    scanned = {}
    for page in sorted(site.rglob("*.html")):
        scanner = _PageScanner()
        scanner.feed(page.read_text(encoding="utf-8"))
        scanner.close()
        scanned[str(page.relative_to(site))] = scanner
    assert "api/index.html" in scanned and "index.html" in scanned
    return scanned


def _excerpts(pattern: re.Pattern[str], text: str) -> list[str]:
    return [text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " ") for m in pattern.finditer(text)]


def test_no_raw_rest_markup(pages: dict[str, _PageScanner]) -> None:
    found = {name: _excerpts(RAW_REST, "".join(page.prose)) for name, page in pages.items()}
    assert not {name: hits for name, hits in found.items() if hits}


def test_no_latex_outside_math(pages: dict[str, _PageScanner]) -> None:
    found = {name: _excerpts(RAW_LATEX, "".join(page.prose)) for name, page in pages.items()}
    assert not {name: hits for name, hits in found.items() if hits}


def test_no_prose_read_as_html_tags(pages: dict[str, _PageScanner]) -> None:
    found = {name: page.unknown_tags for name, page in pages.items() if page.unknown_tags}
    assert not found


def test_inner_product_shown_as_text(pages: dict[str, _PageScanner]) -> None:
    # The front page states transport_cost = W_p^p = <P, C>; the pairing must survive as text.
    front = "".join(pages["index.html"].prose)
    assert re.search(r"[<⟨]P, C[>⟩]", front), "the front page lost <P, C>"


def test_math_renderer_served_by_the_site(site: Path, pages: dict[str, _PageScanner]) -> None:
    api = pages["api/index.html"]
    external = [src for page in pages.values() for src in page.script_sources + page.stylesheets if "://" in src]
    assert not external, f"pages load scripts or styles from other sites: {sorted(set(external))}"
    katex_js = [src for src in api.script_sources if src.endswith("katex.min.js")]
    katex_css = [href for href in api.stylesheets if href.endswith("katex.min.css")]
    assert katex_js and katex_css, "the math renderer is not loaded by the API page"
    assert ((site / "api" / katex_js[0]).resolve()).is_file()
    css = (site / "api" / katex_css[0]).resolve()
    for font in re.findall(r"url\(([^)]+)\)", css.read_text(encoding="utf-8")):
        assert (css.parent / font).is_file(), f"KaTeX font {font} is referenced but not served"


_KATEX_CHECK = """
const katex = require(process.argv[2]);
const items = JSON.parse(require("fs").readFileSync(process.argv[3], "utf8"));
const failures = [];
for (const [page, display, tex] of items) {
  try { katex.renderToString(tex, {displayMode: display, throwOnError: true}); }
  catch (error) { failures.push(page + ": " + error.message); }
}
console.log(JSON.stringify(failures));
"""


def test_math_typesets_without_errors(site: Path, tmp_path: Path) -> None:
    """Every math element of the site parses in the KaTeX copy the site serves (as a browser would run it)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: this check runs the site's KaTeX outside a browser")
    from html import unescape

    items = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        for tag, tex in re.findall(r'<(span|div) class="arithmatex">(.*?)</\1>', html, flags=re.DOTALL):
            tex = unescape(tex).strip()
            items.append([str(page.relative_to(site)), tag == "div", tex[2:-2]])
    assert len(items) >= 10, "the site should carry the formulas of the method pages and the API reference"
    (tmp_path / "math.json").write_text(json.dumps(items), encoding="utf-8")
    (tmp_path / "check.js").write_text(_KATEX_CHECK, encoding="utf-8")
    katex = site / "assets" / "katex" / "katex.min.js"
    done = subprocess.run([node, str(tmp_path / "check.js"), str(katex), str(tmp_path / "math.json")],
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=True)
    assert json.loads(done.stdout) == []


def _parameter_rows(html: str, identifier: str) -> dict[str, tuple[str, str]]:
    """Name -> (type, default) of the Parameters table that follows ``identifier``'s heading."""
    start = html.index(f'id="{identifier}"')
    end = html.find('class="doc doc-heading"', html.index(">", start))
    section = html[start : end if end >= 0 else len(html)]
    section = section[section.index("doc-section-title\">Parameters:") :]
    section = section[: section.index("</table>")]
    rows = {}
    for row in re.findall(r'<tr class="doc-section-item">(.*?)</tr>', section, flags=re.DOTALL):
        cells = [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row, flags=re.DOTALL)]
        name, annotation, _, default = (" ".join(cell.split()) for cell in cells)
        rows[name] = (annotation, default)
    return rows


def _annotation_text(annotation) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


@pytest.mark.parametrize(
    ("function", "documented"),
    [
        (otdist.transport, {"u_values", "metric", "**options"}),
        (otdist.wasserstein, {"u_values", "v_weights", "metric", "minkowski_p", "**options"}),
    ],
)
def test_parameter_rows_match_signature(site: Path, function, documented: set[str]) -> None:
    from html import unescape

    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    rows = _parameter_rows(html, f"otdist.{function.__name__}")
    signature = inspect.signature(function).parameters
    assert documented <= set(rows), sorted(rows)
    for name, (annotation, default) in rows.items():
        parameter = signature[name.lstrip("*")]
        expected_type = _annotation_text(parameter.annotation)
        assert unescape(annotation) == expected_type, (name, annotation)
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            assert unescape(default) in {"", "{}"}, (name, default)
        elif parameter.default is inspect.Parameter.empty:
            assert default == "required", (name, default)
        else:
            assert unescape(default) == repr(parameter.default), (name, default)


def test_cross_reference_links_to_documented_function(site: Path) -> None:
    html = (site / "api" / "index.html").read_text(encoding="utf-8")
    start = html.index('id="otdist.wasserstein"')
    section = html[start : html.index('id="otdist.transport"')]
    assert re.search(r'<a [^>]*href="#otdist\.transport"[^>]*><code>transport</code></a>', section)


def _load_extension():
    pytest.importorskip("griffe", reason="griffe is not installed: pip install -e '.[docs]'")
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RstToMarkdown()


def test_extension_rewrites_rest_constructs() -> None:
    docstring = "\n".join(
        [
            "Solves min_P <P, C> over couplings, see :func:`~otdist.transport` and :math:`\\varepsilon > 0`.",
            "",
            ".. math:: W_p(\\mu, \\nu) = \\min_\\gamma",
            "          \\sum_{ij} \\gamma_{ij} C_{ij}",
            "",
            ".. math::",
            "",
            "    \\frac{a}{b}",
            "",
            ".. note:: Costs <= 0 are fine.",
            "",
            "Parameters",
            "----------",
            "x, y : int",
            "    Sizes ``n < m``.",
            "metric",
            "    A metric.",
            "",
            "Every argument is checked",
            "before any work.",
            "",
            "Examples",
            "--------",
            ">>> 1 < 2",
            "True",
        ]
    )
    lines = _load_extension().convert(docstring).splitlines()
    text = "\n".join(lines)
    assert "min_P &lt;P, C> over" in text
    assert "`transport`" in text and ":func:" not in text
    assert "$\\varepsilon > 0$" in text and ":math:" not in text
    assert ".. math::" not in text and ".. note::" not in text
    first = lines.index("$$")
    assert lines[first : first + 4] == ["$$", "W_p(\\mu, \\nu) = \\min_\\gamma", "\\sum_{ij} \\gamma_{ij} C_{ij}", "$$"]
    second = lines.index("$$", first + 4)
    assert lines[second : second + 3] == ["$$", "\\frac{a}{b}", "$$"]
    assert "!!! note" in lines and "    Costs &lt;= 0 are fine." in lines
    assert lines.count("    Sizes ``n < m``.") == 2
    assert "x : int" in lines and "y : int" in lines and "metric" in lines
    assert ">>> 1 < 2" in lines
    assert lines.index("Every argument is checked") < lines.index("Parameters")
    assert lines.index("before any work.") == lines.index("Every argument is checked") + 1
