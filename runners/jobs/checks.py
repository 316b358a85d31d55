"""Launch-time checks that several jobs make of their caches, before any work."""

from __future__ import annotations

from collections.abc import Sequence

from tamis.runners.sections import Specialist
from tamis.storage.cache import Cache, all_document_vectors, open_cache, same_model
from tamis.storage.errors import CacheError, PlanError
from tamis.storage.inputs import InputPlan


def check_cache_inputs(plan: InputPlan, cache: Cache, every: bool = False) -> None:
    """The cache must have been made from these very files (same relative path and size);
    with ``every``, from no other file either (a job that weighs by the whole cache's counts).
    """
    known = {i["rel"]: i for i in cache.manifest["inputs"]}
    for f in plan.files:
        entry = known.get(f.rel)
        if entry is None or entry["bytes"] != f.bytes:
            raise CacheError(f"{f.path}: the embedding cache {cache.path} was not made from this "
                             f"file; run tamis embed on the same inputs")
    extra = sorted(set(known) - {f.rel for f in plan.files})
    if every and extra:
        more = ", ..." if len(extra) > 3 else ""
        raise CacheError(f"the embedding cache {cache.path} was made from more files than "
                         f"'inputs' names ({', '.join(extra[:3])}{more}): its cluster counts "
                         f"would not be the pool's; give the same inputs")


def specialist_documents(pool: Cache, specialists: Sequence[Specialist]) -> int:
    """The most documents in one specialist cache; each must be embedded as the pool was and
    hold at least one document."""
    documents = 0
    for s in specialists:
        same_model(pool, open_cache(s.embeddings))
        found = len(all_document_vectors(s.embeddings))
        if not found:
            raise PlanError(f"specialist set {s.embeddings} is empty: it holds no document")
        documents = max(documents, found)
    return documents
