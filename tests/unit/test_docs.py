"""The repository explains itself (docs/): every citation of docs/ resolves, nothing points outside it.

Code cites the method, dataset and evaluation reference as ``docs/<file>.md#<anchor>``, where the anchor
is an explicit ``<a id="<anchor>"></a>`` line in that file (stable, unlike heading slugs). Nothing in
the repository may point at the project's private notes outside it (a ``../shared`` folder, its
reference document, or that document's numbered sections and quirks), which users never see.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
DOCS = REPOSITORY / "docs"
THIS_FILE = Path(__file__).resolve()

CITING = ("src", "bench", "tests", "workflow", "README.md", "Snakefile")
"""Where code and prose cite docs/."""

SCANNED = (*CITING, "docs", "config.yaml", "configs", "profiles", "Makefile", "pyproject.toml", "tools")
SCANNED += (".ci",)
"""Everything checked for pointers outside the repository."""

TEXT_SUFFIXES = {".py", ".md", ".smk", ".yaml", ".yml", ".toml", ".txt", ".sh", ".cfg", ".ini", ".json"}
TEXT_NAMES = {"Snakefile", "Makefile", "run"}

CITATION = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md)#([A-Za-z0-9_-]+)")
ANCHOR = re.compile(r'<a id="([A-Za-z0-9_-]+)"></a>')
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

FORBIDDEN = {
    "a path to the shared folder outside the repository": re.compile(r"\.\./shared\b"),
    "the external reference document": re.compile(r"shared/reference|sie-reference", re.IGNORECASE),
    "a numbered section of the external reference": re.compile(
        r"\breference\s+(?:section\s+|§\s*)?\d+(?:\.\d+)*\b", re.IGNORECASE
    ),
    "an appendix of the external reference": re.compile(
        r"\breference\s+appendix\b|\(appendix\s+[a-z]\)", re.IGNORECASE
    ),
    "a numbered quirk of the external reference": re.compile(
        r"\bquirks?\s*(?:#|no\.?\s*)?\d+", re.IGNORECASE
    ),
    "section numbers of a reference": re.compile(
        r"\breferences?\b[^\n()]{0,40}\(\d+(?:\.\d+)+\)", re.IGNORECASE
    ),
}


def text_files(roots: tuple[str, ...]) -> Iterator[Path]:
    """Text files under the given top-level files and folders (hidden and cache folders skipped)."""
    for name in roots:
        root = REPOSITORY / name
        if root.is_file():
            yield root
            continue
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(
                entry for entry in subfolders if not entry.startswith(".") and entry != "__pycache__"
            )
            for file_name in sorted(files):
                path = Path(folder) / file_name
                if path.suffix in TEXT_SUFFIXES or file_name in TEXT_NAMES:
                    yield path


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def anchors(path: Path) -> list[str]:
    """The explicit anchors of a Markdown file, in order (duplicates kept)."""
    return ANCHOR.findall(path.read_text(encoding="utf-8"))


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(REPOSITORY)}:{number}"


def citations() -> list[tuple[str, str, str]]:
    """(place, docs file, anchor) of every docs/ citation in the citing files."""
    found = []
    for path in text_files(CITING):
        for number, line in enumerate(read_lines(path), 1):
            found += [(where(path, number), *match.groups()) for match in CITATION.finditer(line)]
    return found


def test_docs_exist_with_an_index() -> None:
    for name in ("README.md", "dataset.md", "method.md", "evaluations.md", "differences.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"


def test_every_citation_resolves_to_an_explicit_anchor() -> None:
    found = citations()
    assert len(found) >= 30, f"expected the code to cite docs/ throughout, found {len(found)} citations"
    broken = []
    for place, file_name, anchor in found:
        target = DOCS / file_name
        if not target.is_file():
            broken.append(f"{place}: docs/{file_name} does not exist")
        elif anchor not in anchors(target):
            broken.append(f'{place}: docs/{file_name} has no <a id="{anchor}"></a>')
    assert not broken, "broken docs citations:\n" + "\n".join(broken)


def test_anchors_are_unique_within_each_file() -> None:
    for path in sorted(DOCS.glob("*.md")):
        seen = anchors(path)
        duplicates = sorted({anchor for anchor in seen if seen.count(anchor) > 1})
        assert not duplicates, f"{path.name}: anchors defined more than once: {duplicates}"


def test_relative_links_in_docs_and_readme_resolve() -> None:
    broken = []
    for path in [REPOSITORY / "README.md", *sorted(DOCS.glob("*.md"))]:
        for number, line in enumerate(read_lines(path), 1):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue  # http(s), mailto: not checked here
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                if not linked.exists():
                    broken.append(f"{where(path, number)}: {target} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    broken.append(f"{where(path, number)}: {target} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_nothing_points_outside_the_repository() -> None:
    offending = []
    for path in text_files(SCANNED):
        if path.resolve() == THIS_FILE:
            continue  # the patterns themselves
        for number, line in enumerate(read_lines(path), 1):
            for what, pattern in FORBIDDEN.items():
                match = pattern.search(line)
                if match:
                    offending.append(f"{where(path, number)}: {match.group(0)!r} ({what})")
    assert not offending, "cite docs/<file>.md#<anchor> instead of the external reference:\n" + "\n".join(
        offending
    )


@pytest.mark.parametrize(
    "text",
    [
        "(reference 4.6)",
        "reference 5.5 step 6",
        "reference section 5",
        "(reference quirk 6)",
        "quirk 17",
        "quirks 11 and 12",
        "see ../shared/reference/sie-reference.md",
        "reference Appendix A",
        "defaults (Appendix B)",
        "a plain re-derivation of the reference losses (3.3)",
    ],
)
def test_forbidden_patterns_catch_external_citations(text: str) -> None:
    assert any(pattern.search(text) for pattern in FORBIDDEN.values()), text


@pytest.mark.parametrize(
    "text",
    [
        "reference = next(module.parameters(), None)",
        "on the project's reference machine (2 cores, 24 GB, no GPU), 2026-11-29",
        "unit tests of pure functions against independent references (scipy Rotation)",
        "def test_loss_matches_reference_formula(method: str) -> None:",
        "QUERY, REFERENCE, CAP, TAU = 4_000, 60_000, 0.1, 0.02",
        "the fp32 reference is fp32 as the training loop runs it",
        "latency-wait: 60   # seconds to wait for outputs to appear on the shared filesystem",
        "(docs/evaluations.md#r2-global; the original's quirk, kept for comparability)",
    ],
)
def test_forbidden_patterns_spare_ordinary_words(text: str) -> None:
    assert not any(pattern.search(text) for pattern in FORBIDDEN.values()), text


def test_readme_links_the_documentation() -> None:
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    assert "](docs/README.md)" in readme, "README.md must link docs/README.md"
