"""The documentation stands alone: no references to files outside the repository, working
relative links and anchors, well-formed external links, and the References sections.

Fast (text only, no network): every check reads the files of the repository and nothing else.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".ipynb", ".cfg", ".toml", ".txt"}
# Folders that are not part of the repository's text when it is walked without git.
SKIP_DIRS = {".git", ".venv", "venv", ".cache", "__pycache__", "build", "dist", "data", "results", "runs",
             "export", "cache", "node_modules", ".pytest_cache", ".ipynb_checkpoints"}

# A reference to a specification kept outside the repository: a path into a specs folder, a
# "*spec*.md" file, "the spec(s)", "(spec: ...)", the names of the outside spec files, or a path
# into a shared folder.  Words that merely contain "spec" (SpecAugment, spectrum, TensorSpec,
# input_spec, kernelspec) do not match: the patterns need a word boundary before "spec".
OUTSIDE_SPEC = re.compile(
    r"""\bspecs?/
      | \b\w*spec\w*\.md\b
      | \bspecs\b
      | \bthe\s+spec\b
      | \bspec\s*:
      | \bspec\s+"
      | \b(?:two_stage_asc|raw_waveform_asc|datasets)\.md\b
      | \bshared/(?:specs|reference)\b
      | /work/
    """, re.IGNORECASE | re.VERBOSE)
# Names of the outside spec files that are also names of pages in docs/: only a bare mention in
# code (a comment or docstring citing a section, e.g. weak_sed.md "Model") refers to the outside
# file; "docs/weak_sed.md" is the page.
BARE_PAGE_NAME = re.compile(r"(?<![\w/.-])(?:weak_sed|dcasenet)\.md\b")
# Identifiers and words that contain "spec" legitimately; removed before matching.
ALLOWED = re.compile(r"SpecAugment|spec_augment|TensorSpec|input_spec|RunSpec|find_spec|kernelspec|"
                     r"spectrum|spectra|spectrogram|spectral|specifications?|specific\w*", re.IGNORECASE)

MD_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
BARE_URL = re.compile(r"(?<![(<\w])(https?://[^\s)>\]`\"']+)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

ARXIV_PAPERS = {
    "2011.01447": "A two-stage approach to device-robust acoustic scene classification",
    "2009.09642": "DcaseNet: an integrated pretrained deep neural network",
    "2106.06858": "Improving weakly supervised sound event detection with self-supervised auxiliary tasks",
}
ABROL_TITLE = "Learning hierarchy aware embedding from raw audio for acoustic scene classification"


def repository_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (git), or a walk that skips generated folders."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True, timeout=30).stdout.decode()
        paths = [ROOT / p for p in out.split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        paths = [p for p in ROOT.rglob("*")
                 if not any(part in SKIP_DIRS or part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.suffix in SUFFIXES and p.is_file())


def prose_of_python(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and string literal of a Python source (code is not prose:
    variables named ``spec`` / ``specs`` are fine)."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING) or getattr(tokenize, "FSTRING_MIDDLE", None) == tok.type:
            out.append((tok.start[0], tok.string))
    return out


def outside_spec_references(path: Path, text: str) -> list[str]:
    """'path:line: match' for every reference to a specification outside the repository."""
    rel = path.relative_to(ROOT) if path.is_absolute() else path
    if path.suffix == ".py":
        chunks = prose_of_python(text)
    else:
        chunks = list(enumerate(text.splitlines(), 1))
    in_docs = rel.parts[:1] == ("docs",)
    hits = []
    for start, chunk in chunks:
        for k, line in enumerate(chunk.splitlines() or [chunk]):
            clean = ALLOWED.sub("", line)
            found = [m.group(0) for m in OUTSIDE_SPEC.finditer(clean)]
            if path.suffix == ".py" or (path.suffix != ".md" and not in_docs):
                found += [m.group(0) for m in BARE_PAGE_NAME.finditer(clean)]
            hits += [f"{rel}:{start + k}: {f!r} in {line.strip()[:120]!r}" for f in found]
    return hits


def markdown_files() -> list[Path]:
    return [p for p in repository_files() if p.suffix == ".md"]


def strip_code(text: str) -> str:
    """Markdown without fenced code blocks and inline code spans (links there are examples)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link in a heading keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"),
                       flags=re.MULTILINE | re.DOTALL).splitlines():
        m = HEADING.match(line)
        if not m:
            continue
        slug = github_anchor(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(path: Path) -> list[str]:
    text = strip_code(path.read_text(encoding="utf-8"))
    return [m.group(1) for m in MD_LINK.finditer(text)] + [m.group(1) for m in AUTOLINK.finditer(text)]


def external_urls(path: Path) -> list[str]:
    text = strip_code(path.read_text(encoding="utf-8"))
    urls = [u for u in links(path) if re.match(r"[a-z][a-z0-9+.-]*:", u, re.IGNORECASE)]
    return urls + [m.group(1).rstrip(".,;:") for m in BARE_URL.finditer(text)]


def broken_relative_links(path: Path) -> list[str]:
    bad = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue                                            # external: see test_external_links
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / file_part).resolve()
        rel = path.relative_to(ROOT)
        if not dest.exists():
            bad.append(f"{rel}: {target} (no such file)")
        elif not dest.is_relative_to(ROOT):
            bad.append(f"{rel}: {target} (outside the repository)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{rel}: {target} (no heading with anchor #{anchor} in {dest.relative_to(ROOT)})")
    return bad


def malformed_url(url: str) -> str | None:
    """Why an external link is not a well-formed https URL (None when it is)."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "not https"
    host = parts.hostname or ""
    if "." not in host or not re.fullmatch(r"[a-z0-9.-]+", host) or host.startswith(".") or host.endswith("."):
        return "bad host"
    if re.search(r"\s|[<>\"{}|\\^`]", url):
        return "character not allowed in a URL"
    if url.endswith((".", ",", ";", ":")):
        return "ends with punctuation"
    return None


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert m, f"README.md has no '## {title}' section"
    return " ".join(m.group(1).split())          # titles wrap over lines


# ------------------------------------------------------------------------------------------------
# (a) no references to specifications outside the repository
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, path, expected", [
    ("On disk (see specs/datasets.md)::", "tf_scenes/datasets/x.py", True),
    ("Reproduction study (spec: `shared/specs/raw_waveform_asc.md`).", "docs/x.md", True),
    ("# Defaults of the reference code (spec \"Models\"): (dropout, L2 weight decay)", "tf_scenes/x.py", True),
    ("Adam as the spec says.", "docs/x.md", True),
    ("the weights (two_stage_asc.md, Features)", "docs/x.md", True),
    ("# Init (weak_sed.md \"Model\")", "tf_scenes/x.py", True),
    ("Facts: see the specs.", "README.md", True),
    ("per-clip SpecAugment, then the spectrum of each device", "README.md", False),
    ("a tf.TensorSpec list and the layer's input_spec", "docs/x.md", False),
    ("[docs/weak_sed.md](docs/weak_sed.md): the study page", "README.md", False),
    ("the kernelspec of the notebook; jsonschema-specifications", "docs/x.md", False),
])
def test_outside_spec_pattern_catches_references_and_spares_words(line, path, expected):
    # In Python only comments and strings are prose: a "# ..." line stays a comment, any other
    # line becomes a docstring.
    if path.endswith(".py") and not line.startswith("# "):
        line = '"""' + line + '"""'
    hits = outside_spec_references(Path(path), line + "\n")
    assert bool(hits) is expected, hits


def test_variables_named_spec_in_code_are_not_references():
    code = "specs = [tf.TensorSpec((2,), tf.float32)]\nfor spec in specs:\n    print(spec.shape)\n"
    assert outside_spec_references(Path("x.py"), code) == []
    assert outside_spec_references(Path("x.py"), code + "# as the spec says\n") != []


def test_no_file_refers_to_specifications_outside_the_repository():
    files = repository_files()
    assert any(p.name == "README.md" for p in files) and any(p.suffix == ".py" for p in files)
    hits = []
    for path in files:
        if path.resolve() == Path(__file__).resolve():
            continue                           # this file spells the forbidden patterns out
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            cells = json.loads(text).get("cells", [])
            text = "\n".join("".join(c.get("source", [])) for c in cells)
            hits += outside_spec_references(path.with_suffix(".md"), text)
        else:
            hits += outside_spec_references(path, text)
    assert hits == [], "references to files outside the repository:\n" + "\n".join(hits)


# ------------------------------------------------------------------------------------------------
# (b) relative links and anchors
# ------------------------------------------------------------------------------------------------

def test_anchor_rule_matches_github():
    assert github_anchor("Choices made (the paper leaves them open)") == "choices-made-the-paper-leaves-them-open"
    assert github_anchor("Outputs (`results/raw_waveform/`)") == "outputs-resultsraw_waveform"
    assert github_anchor("Training on CPU, one GPU or many") == "training-on-cpu-one-gpu-or-many"
    assert github_anchor("DcaseNet v1/v2/v3") == "dcasenet-v1v2v3"


def test_broken_link_check_finds_missing_files_and_anchors(tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Some section\n")
    readme = tmp_path / "README.md"
    readme.write_text("[ok](docs/page.md#some-section) [top](#title) `[code](nowhere.md)`\n"
                      "[gone](docs/missing.md) [bad anchor](docs/page.md#nope) [ext](https://example.org)\n\n# Title\n")
    assert broken_relative_links(readme) == [
        "README.md: docs/missing.md (no such file)",
        "README.md: docs/page.md#nope (no heading with anchor #nope in docs/page.md)",
    ]


@pytest.mark.parametrize("path", [p.relative_to(ROOT).as_posix() for p in markdown_files()])
def test_relative_links_point_to_existing_files_and_headings(path):
    assert broken_relative_links(ROOT / path) == []


def test_readme_links_every_documentation_page():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md") if t.startswith("docs/")}
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert {"api.md", "architecture.md", "distributed.md"} <= {p.name for p in pages}
    missing = [p.relative_to(ROOT).as_posix() for p in pages if p.resolve() not in linked]
    assert missing == [], f"README.md does not link {missing}"
    assert "docs/api.md" in readme_section("Documentation")


# A file or folder of the repository named in a code span of a page, e.g. `tf_scenes/dcasenet/model.py`.
REPO_PATH = re.compile(r"`((?:tf_scenes|pipelines|experiments|tests|docs|bench|notebooks)/[\w./-]*?"
                       r"(?:\.(?:py|md|yaml|ipynb|json|csv|txt)|/))`")


@pytest.mark.parametrize("path", ["README.md"] + [p.relative_to(ROOT).as_posix()
                                                  for p in sorted((ROOT / "docs").glob("*.md"))])
def test_repository_paths_named_in_the_docs_exist(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    missing = sorted({m.group(1) for m in REPO_PATH.finditer(text) if not (ROOT / m.group(1)).exists()})
    assert missing == [], f"{path} names paths that do not exist: {missing}"


# ------------------------------------------------------------------------------------------------
# (c) References sections
# ------------------------------------------------------------------------------------------------

def test_readme_references_cite_the_four_papers_their_code_and_data():
    refs = readme_section("References")
    for arxiv_id, title in ARXIV_PAPERS.items():
        assert f"(https://arxiv.org/abs/{arxiv_id})" in refs
        assert title.lower() in refs.lower()
    assert ABROL_TITLE.lower() in refs.lower() and "vol. 28" in refs
    for url in ("https://github.com/MihawkHu/DCASE2020_task1", "https://github.com/Jungjee/DcaseNet",
                "https://github.com/soham97/MTL_Weakly_labelled_audio_data",
                "https://github.com/qiuqiangkong/sed_time_freq_segmentation",
                "https://zenodo.org/record/3819968", "https://zenodo.org/record/3612637",
                "https://zenodo.org/record/4064792", "https://zenodo.org/record/2552860",
                "https://github.com/karolpiczak/ESC-50",
                "https://github.com/TUT-ARG/sed_eval", "https://github.com/fgnt/sed_scores_eval"):
        assert url in refs, url


@pytest.mark.parametrize("page, arxiv_id", [("docs/dcasenet.md", "2009.09642"),
                                            ("docs/weak_sed.md", "2106.06858"),
                                            ("docs/raw_waveform.md", None)])
def test_study_pages_have_references(page, arxiv_id):
    text = (ROOT / page).read_text(encoding="utf-8")
    assert "references" in anchors(ROOT / page)
    refs = " ".join(text[text.index("References\n"):].split())
    if arxiv_id:
        assert f"https://arxiv.org/abs/{arxiv_id}" in refs
    else:
        assert ABROL_TITLE.lower() in refs.lower()
    assert "../README.md#references" in refs


# ------------------------------------------------------------------------------------------------
# (d) external links are well-formed https URLs (checked as text: nothing is fetched)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, why", [
    ("https://arxiv.org/abs/2011.01447", None),
    ("https://zenodo.org/record/3819968", None),
    ("http://dcase.community/", "not https"),
    ("https://localhost/x", "bad host"),
    ("https://github.com/a b", "character not allowed in a URL"),
    ("https://example.org/x.", "ends with punctuation"),
])
def test_url_rule(url, why):
    assert malformed_url(url) == why


@pytest.mark.parametrize("path", [p.relative_to(ROOT).as_posix() for p in markdown_files()])
def test_external_links_are_well_formed_https(path):
    bad = [f"{u}: {why}" for u in external_urls(ROOT / path) if (why := malformed_url(u))]
    assert bad == []
