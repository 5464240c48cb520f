"""Dataset analyses of a study (Fig. 2): semantic similarity between datasets and LDA topics.

Both read each domain's train split and write JSON under ``{study}/analysis/``; the report draws them.
"""

from adaptermix.analysis.documents import document_text, load_study_documents, sample_documents
from adaptermix.analysis.similarity import (
    centroid_similarity,
    dataset_similarity,
    load_sentence_encoder,
    write_similarity,
)
from adaptermix.analysis.topics import dataset_topics, lda_topics, write_topics

__all__ = [
    "centroid_similarity",
    "dataset_similarity",
    "dataset_topics",
    "document_text",
    "lda_topics",
    "load_sentence_encoder",
    "load_study_documents",
    "sample_documents",
    "write_similarity",
    "write_topics",
]
