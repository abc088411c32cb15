"""Answer-quality harness: the demo knowledge base against labelled questions.

Run ``.venv/bin/python tests/eval/eval_answers.py [--split NAME|all] [--failures]`` (splits:
dev, dev2, test, test2, test3 … test18). It loads the demo practice's documents into an
in-memory database through the knowledge service, asks every question of the split, and prints a
markdown table; it writes nothing.

Scoring: an answerable question counts as correct when it is answered, cites its expected
document, and the answer contains the key phrase; an unanswerable one (not covered, clinical
advice, or an injection attempt) counts as correct when it is declined. ``dev`` is for
calibrating thresholds; ``test`` was held out until it had been reported once; ``test2``
(written 2026-12-06 by a writer told to paraphrase the documents' wording) is held out and only
reported; ``test3`` (written 2026-12-07 by another writer who read only the documents) was
held out until its first score, then used for development, and so were ``test4`` … ``test7``
(other writers, the same day); ``test8`` (another writer, the same day) is held out and only
reported; ``test9`` and ``test10`` (two more writers, 2026-12-07, session 7) were held out
until their first score, then used for development; so were ``test11`` and ``test12`` (two more
writers, session 8), ``test13`` and ``test14`` (two more writers, session 10) and ``test15`` and
``test16`` (two more writers, session 12, before that session's answer changes), and ``test17``
and ``test18`` (two more writers, session 12, after them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CASES = HERE / "answers"
SPLITS = (
    "dev",
    "dev2",
    "test",
    "test2",
    *(f"test{n}" for n in range(3, 19)),
)


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    answerable: bool
    source: str | None
    key: str | None
    kind: str
    split: str


def load_cases(split: str = "all") -> list[Case]:
    cases: list[Case] = []
    for name in SPLITS if split == "all" else (split,):
        for line in (CASES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            cases.append(
                Case(
                    id=row["id"],
                    question=row["question"],
                    answerable=bool(row["answerable"]),
                    source=row.get("source"),
                    key=row.get("key"),
                    kind=row.get("kind", "answerable"),
                    split=name,
                )
            )
    return cases


def is_correct(case: Case, result: dict[str, Any]) -> bool:
    if not case.answerable:
        return not result["answered"]
    if not result["answered"] or not result["citations"]:
        return False
    sources = {c["source"] for c in result["citations"]}
    return case.source in sources and (case.key or "").lower() in result["answer"].lower()


@dataclass
class Tally:
    correct: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.correct += ok
        self.total += 1

    def cell(self) -> str:
        if not self.total:
            return "-"
        return f"{self.correct}/{self.total} ({100 * self.correct / self.total:.1f}%)"


def score(cases: Sequence[Case], results: Sequence[dict[str, Any]]) -> dict[str, dict[str, Tally]]:
    """Per split (and 'all'): tallies for answerable, unanswerable, and each unanswerable kind."""
    table: dict[str, dict[str, Tally]] = {}
    for case, result in zip(cases, results, strict=True):
        ok = is_correct(case, result)
        for split in (case.split, "all"):
            row = table.setdefault(split, {})
            group = "answerable" if case.answerable else "unanswerable"
            row.setdefault(group, Tally()).add(ok)
            if not case.answerable:
                row.setdefault(case.kind, Tally()).add(ok)
    return table


def render(table: dict[str, dict[str, Tally]]) -> str:
    columns = ["answerable", "unanswerable", "not_covered", "clinical", "injection"]
    lines = [
        "| split | answered correctly with citation | declined (all) | declined: not covered "
        "| declined: clinical advice | declined: injection |",
        "|---|---|---|---|---|---|",
    ]
    for split in (*SPLITS, "all"):
        if split in table:
            cells = [table[split].get(c, Tally()).cell() for c in columns]
            lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(cases: Sequence[Case], *, embeddings: bool = True) -> tuple[list[dict[str, Any]], float]:
    """Answers from the demo knowledge base, through the knowledge service (``embeddings``:
    fuse sentence embeddings with BM25 when the extra is installed; False is BM25 alone), and
    the seconds spent answering (after the index, and the model if any, are built)."""
    from frontdesk.bootstrap import build_runtime
    from frontdesk.config import Settings
    from frontdesk.services import knowledge, practices

    settings = Settings(
        database_url="sqlite://", secret_key="eval-" + "x" * 40, kb_embeddings=embeddings
    )
    runtime = build_runtime(settings, upgrade=True)
    try:
        with runtime.transaction() as session:
            practices.ensure_default_practice(session, "America/New_York")
            practice = practices.resolve_practice(session, None)
            practice_id = practice.id
            knowledge.seed_demo_documents(session, practice)
            knowledge.index_for(session, practice_id, embeddings=embeddings)  # built once here
        started = time.perf_counter()
        answers = knowledge.answer_many(runtime, practice_id, [c.question for c in cases])
        return [a.as_dict() for a in answers], time.perf_counter() - started
    finally:
        runtime.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    parser.add_argument("--failures", action="store_true", help="list the questions missed")
    parser.add_argument(
        "--embeddings",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fuse sentence embeddings with BM25 (when the extra is installed); "
        "--no-embeddings is BM25 alone",
    )
    args = parser.parse_args(argv)
    cases = load_cases(args.split)
    from frontdesk.agent import embeddings

    fused = args.embeddings and embeddings.available()
    started = time.perf_counter()
    results, answering = run(cases, embeddings=args.embeddings)
    elapsed = time.perf_counter() - started
    print(f"retrieval: {'BM25 + embeddings (RRF)' if fused else 'BM25 alone'}\n")
    print(render(score(cases, results)))
    print(
        f"\n{len(cases)} questions in {elapsed:.2f} s, of which answering {answering:.2f} s "
        f"({1000 * answering / max(len(cases), 1):.1f} ms per question; the rest is the "
        "database, the index build and, with embeddings, loading the model)"
    )
    if args.failures:
        print()
        for case, result in zip(cases, results, strict=True):
            if not is_correct(case, result):
                got = result["answer"][:100] if result["answered"] else "(declined)"
                cited = ",".join(c["source"] for c in result["citations"])
                print(f"- {case.id} {case.question!r}: {got} [{cited}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
