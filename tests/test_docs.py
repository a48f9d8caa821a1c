"""The repository cites only what it contains.

1. No tracked text file names the documents that live outside the repository (the reference notes
   and the design notes, both in a sibling `shared` folder), nor that folder, except the entries
   of ALLOWED (deliberate) and PENDING (known, to be removed).
2. Every relative link in README.md and docs/*.md points to a file of the repository, and a
   `#fragment` into a markdown file names one of its headings.
"""

import glob
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS_FILE = "tests/test_docs.py"  # names the tokens below, so it is not scanned itself

FORBIDDEN = ("REFERENCE.md", "DESIGN.md", "../shared")

# (tracked path, exact text allowed in it). Each entry is a data folder, not a document.
ALLOWED = {
    # CI sets MONITOR_DATA_DIR to the sibling data folder when the checkout has one.
    (".ci/run", "../shared/data"),
    # --data-dir help text: the default data folder the benchmark looks for (ROOT.parent/shared/data).
    ("bench/overhead.py", "../shared/data"),
    # usage example in the module docstring: the data folder bench/results/distribute.json was made with.
    ("bench/distribute.py", "MONITOR_DATA_DIR=../shared/data"),
    # the exact commands behind bench/results/full.json and distribute.json (Performance section).
    ("README.md", "MONITOR_DATA_DIR=../shared/data"),
}

# TODO: known offenders that someone else is rewriting. Empty this set once their work is merged;
# test_no_stale_exceptions fails as soon as an entry no longer matches anything.
PENDING: set[tuple[str, str]] = set()


def _tracked_text_files() -> dict[str, str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    texts = {}
    for path in out.decode().split("\0"):
        if not path or path == THIS_FILE or path.startswith("bench/results/"):
            continue
        full = os.path.join(ROOT, path)
        if not os.path.isfile(full):  # deleted in the work tree, not yet in the index
            continue
        with open(full, "rb") as f:
            data = f.read()
        try:
            texts[path] = data.decode("utf-8")
        except UnicodeDecodeError:  # binary
            continue
    return texts


def _scan():
    """(offences, exceptions that matched at least once)."""
    exceptions = ALLOWED | PENDING
    offences, used = [], set()
    for path, text in sorted(_tracked_text_files().items()):
        for number, line in enumerate(text.splitlines(), start=1):
            for entry in exceptions:
                if entry[0] == path and entry[1] in line:
                    used.add(entry)
                    line = line.replace(entry[1], "")
            offences += [f"{path}:{number}: {token}" for token in FORBIDDEN if token in line]
    return offences, used


def test_no_file_cites_what_the_repository_lacks():
    offences, _ = _scan()
    assert not offences, (
        "files outside the repository are cited (point to docs/recipes.md, or, for a data folder, "
        "add an explained entry to ALLOWED):\n" + "\n".join(offences))


def test_no_stale_exceptions():
    _, used = _scan()
    stale = sorted((ALLOWED | PENDING) - used)
    assert not stale, f"these ALLOWED/PENDING entries match nothing any more; remove them: {stale}"


# ---------------------------------------------------------------------------------------------
# links

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", flags=re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", flags=re.S)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", flags=re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _markdown_files() -> list[str]:
    return [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _links(text: str) -> list[str]:
    prose = _prose(text)
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def _anchors(path: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _broken_links(md_path: str) -> list[str]:
    with open(md_path, encoding="utf-8") as f:
        text = f.read()
    rel_md = os.path.relpath(md_path, ROOT)
    broken = []
    for link in _links(text):
        if SCHEME.match(link):  # https:, mailto:, ...
            continue
        target, _, fragment = link.partition("#")
        target = target.split("?")[0]
        full = os.path.normpath(os.path.join(os.path.dirname(md_path), target)) if target else md_path
        if os.path.relpath(full, ROOT).startswith(".."):
            broken.append(f"{rel_md}: {link} (outside the repository)")
        elif not os.path.exists(full):
            broken.append(f"{rel_md}: {link} (no such file)")
        elif fragment and full.endswith(".md") and fragment not in _anchors(full):
            broken.append(f"{rel_md}: {link} (no such heading)")
    return broken


@pytest.mark.parametrize("md_path", _markdown_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_markdown_links_resolve(md_path):
    assert os.path.isfile(md_path)
    broken = _broken_links(md_path)
    assert not broken, "\n".join(broken)


def test_the_link_check_sees_links():
    # guards against a regex that silently finds nothing
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        links = _links(f.read())
    assert "docs/recipes.md" in links
    assert "#use-it-in-your-own-script" in links
    assert "use-it-in-your-own-script" in _anchors(os.path.join(ROOT, "README.md"))
    assert "trainpy-flags" in _anchors(os.path.join(ROOT, "README.md"))  # "## `train.py` flags"
    assert os.path.join(ROOT, "docs", "recipes.md") in _markdown_files()
