"""The answer-quality harness keeps working: its scoring runs on a small slice of each split.

No score is asserted here (quality is reported in docs/QUALITY.md, not gated by tests);
this only proves the cases load, the pipeline runs and the scoring adds up.
"""

from __future__ import annotations

import sys
from pathlib import Path

from frontdesk.services.knowledge import demo_documents

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))

import eval_answers


def test_cases_are_well_formed() -> None:
    cases = eval_answers.load_cases("all")
    assert len({c.id for c in cases}) == len(cases)
    assert {c.split for c in cases} == set(eval_answers.SPLITS)
    documents = {p.name: p.read_text(encoding="utf-8") for p in demo_documents()}
    for case in cases:
        if case.answerable:
            assert case.source and case.key, case.id
            assert case.key in documents[case.source], case.id  # the key is in its document
        else:
            assert case.kind in {"not_covered", "clinical", "injection"}, case.id
    assert sum(c.answerable for c in cases) >= 60
    assert sum(not c.answerable for c in cases) >= 60


def test_the_harness_scores_a_slice() -> None:
    cases = eval_answers.load_cases("dev")[:4] + eval_answers.load_cases("dev")[-4:]
    results, seconds = eval_answers.run(cases)
    assert seconds >= 0.0
    assert len(results) == len(cases)
    table = eval_answers.score(cases, results)
    assert table["all"]["answerable"].total == 4
    assert table["all"]["unanswerable"].total == 4
    rendered = eval_answers.render(table)
    assert rendered.startswith("| split |") and "| dev |" in rendered


def test_scoring_rules() -> None:
    answerable = eval_answers.Case("x", "q", True, "fees.md", "$75", "answerable", "dev")
    declined = {"answered": False, "answer": "no", "citations": []}
    right = {
        "answered": True,
        "answer": "The fee is $75.",
        "citations": [{"source": "fees.md", "section": "Fees", "text": "The fee is $75."}],
    }
    wrong_source = {**right, "citations": [{"source": "other.md", "section": "", "text": ""}]}
    assert eval_answers.is_correct(answerable, right)
    assert not eval_answers.is_correct(answerable, wrong_source)
    assert not eval_answers.is_correct(answerable, declined)
    unanswerable = eval_answers.Case("y", "q", False, None, None, "clinical", "test")
    assert eval_answers.is_correct(unanswerable, declined)
    assert not eval_answers.is_correct(unanswerable, right)
