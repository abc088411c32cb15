"""The support check every generated answer passes before a patient sees it."""

from __future__ import annotations

import pytest

from frontdesk.agent.grounding import check

FEES = (
    "A cancellation with less than 24 hours' notice is a late cancellation and is charged a fee "
    "of $75. The late cancellation fee is waived once per calendar year."
)
PARKING = "Free parking is available in the lot behind the Harbor Street office."
PASSAGES = {1: FEES, 2: PARKING}


def test_a_faithful_paraphrase_with_citations_is_supported() -> None:
    verdict = check(
        "Cancelling with less than 24 hours' notice costs $75 [1]. Parking behind the Harbor "
        "Street office is free. [2]",
        PASSAGES,
    )
    assert verdict.supported, verdict.reason
    assert verdict.cited == (1, 2)
    assert verdict.text == (
        "Cancelling with less than 24 hours' notice costs $75. Parking behind the Harbor "
        "Street office is free."
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("The late fee is $50 [1].", "a number the passages do not state"),
        ("The late fee is $75.", "a sentence cites no passage"),
        ("The late fee is $75 [3].", "a sentence cites a passage it was not given"),
        ("There is no late cancellation fee [1].", "a negation the passages do not make"),
        ("Dr. Patel waives the $75 late fee [1].", "a name the passages do not mention"),
        # True of another passage, not of the one it cites.
        (
            "Free parking is available behind the Harbor Street office [1].",
            "a name the passages do not mention",
        ),
        (
            "Patients receive complimentary massages and aromatherapy [2].",
            "words the passages do not use",
        ),
        ("", "empty"),
    ],
)
def test_unsupported_answers_are_refused_with_the_reason(answer: str, reason: str) -> None:
    verdict = check(answer, PASSAGES)
    assert (verdict.supported, verdict.reason) == (False, reason)
