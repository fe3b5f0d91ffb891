"""The LangChain retriever over the same Chroma store (real store, real model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from ketai.models import Dimension
from ketai.retrieval.index import ExerciseIndex
from ketai.retrieval.langchain import ExerciseRetriever
from ketai.retrieval.search import search
from ketai.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "exercises"


@pytest.fixture
def index(tmp_path: Path) -> ExerciseIndex:
    library = tmp_path / "library"
    shutil.copytree(FIXTURES, library)
    return ExerciseIndex.open(Settings(home=tmp_path / "home", chroma_mode="persistent"), library)


def test_retriever_returns_documents_with_exercise_metadata(index: ExerciseIndex) -> None:
    retriever = ExerciseRetriever(index=index, k=2)
    assert isinstance(retriever, BaseRetriever)
    documents = retriever.invoke("I keep asking my partner whether the door is locked")
    assert len(documents) == 2
    assert all(isinstance(document, Document) for document in documents)
    top = documents[0]
    assert top.metadata["id"] == "fixture-door-delay"
    assert top.metadata["title"] == "Delay the door re-check by ten minutes"
    assert top.metadata["dimensions"] == ["checking", "harm"]
    assert "ten-minute timer" in top.page_content  # summary
    assert "let the doubt stay a maybe" in top.page_content  # body
    # Same store, same order as the CLI search.
    assert [d.metadata["id"] for d in documents] == [
        hit.id for hit in search("I keep asking my partner whether the door is locked", k=2, index=index)
    ]


def test_retriever_filters(index: ExerciseIndex) -> None:
    documents = ExerciseRetriever(index=index, k=3, dimension=Dimension.DEFUSION).invoke("door locked?")
    assert [document.metadata["id"] for document in documents] == ["fixture-thought-label"]
    documents = ExerciseRetriever(index=index, k=3, max_suds=10).invoke("door locked?")
    assert [document.metadata["id"] for document in documents] == ["fixture-thought-label"]


def test_retriever_batch(index: ExerciseIndex) -> None:
    retriever = ExerciseRetriever(index=index, k=1)
    results = retriever.batch(["touched the bin, washed again", "what does this horrible thought mean"])
    assert [documents[0].metadata["id"] for documents in results] == [
        "fixture-bin-touch",
        "fixture-thought-label",
    ]
