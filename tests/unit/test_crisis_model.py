"""The lexical crisis screen (agent/crisis_model.py): a logistic regression that needs nothing
installed. It may only raise a message to crisis; its measured quality is in docs/QUALITY.md."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from frontdesk.agent import crisis_model
from frontdesk.agent import understand as understanding
from frontdesk.agent.crisis_model import CrisisModel, Example, features, read_examples
from frontdesk.agent.crisis_screen import screen_text
from frontdesk.agent.understand import understand
from frontdesk.domain.intents import Intent

INTENTS = Path(__file__).resolve().parents[1] / "eval" / "intents"


def _labelled() -> list[tuple[str, str]]:
    rows = []
    for line in (INTENTS / "labelled.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            intent, _, text = line.split("\t")
            rows.append((intent, text))
    return rows


def test_features_are_presence_of_words_pairs_and_triples_without_lone_function_words() -> None:
    found = features("and and and i took them all")
    assert "w:and" not in found and "w:i" not in found  # function words only inside pairs
    assert {"w:took", "w:all", "b:<s> and", "b:i took", "b:all </s>"} <= set(found)
    assert {"t:<s> and and", "t:i took them", "t:them all </s>"} <= set(found)
    assert not any(f.startswith("w:<") for f in found)
    assert len(set(found.values())) == 1  # presence, not counts: "and" x3 weighs as once
    assert sum(v * v for v in found.values()) == pytest.approx(1.0)


def test_a_model_learns_its_examples_and_needs_both_kinds() -> None:
    examples = [
        Example(True, "I took all my pills tonight"),
        Example(True, "goodbye everyone, it was nice knowing you"),
        Example(True, "he said he will hurt me when he gets home"),
        Example(False, "see you tuesday at 3"),
        Example(False, "running late, traffic"),
        Example(False, "can we move my appointment"),
    ]
    model = CrisisModel.train(examples)
    for e in examples:
        p = model.probability(screen_text(e.text))
        assert (p >= 0.5) is e.crisis, (e.text, p)
    assert model.probability("") == 0.0
    with pytest.raises(ValueError, match="crisis and non-crisis"):
        CrisisModel.train([e for e in examples if e.crisis])


def test_training_is_deterministic() -> None:
    examples = crisis_model.shipped_examples()[:300]
    assert CrisisModel.train(examples).weights == CrisisModel.train(examples).weights


def test_reading_examples_names_the_bad_line() -> None:
    assert read_examples("# comment\ncrisis\ten\tbye all\nordinary\tes\tya voy\n") == [
        Example(True, "bye all"),
        Example(False, "ya voy"),
    ]
    with pytest.raises(ValueError, match="line 2"):
        read_examples("crisis\ten\tok\nmaybe\ten\ttext\n")


def test_shipped_model_raises_indirect_crises_the_rules_miss() -> None:
    # Written for this test (no scored set holds them); the rules have no line for them.
    for text in (
        "i've been counting what's left in the bottle, it's enough",
        "don't bother rebooking me, I won't be needing it after this weekend",
        "cuiden a mi perro por favor, ya me voy a ir para siempre",
    ):
        rules = understand(text, crisis_screen=False)
        found = understand(text)
        assert rules.intent is not Intent.CRISIS, text
        assert found.intent is Intent.CRISIS, text
        rule = found.evidence[0].rule
        assert rule.startswith("model:crisis-screen:p="), rule
        assert text.split()[0] not in rule  # evidence names the model, never the words


def test_a_short_message_more_likely_a_crisis_than_not_goes_to_staff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "my boyfrend chok me until i pass out last nite. im ok now but"
    p = crisis_model.model().probability(screen_text(text))
    # Pin the thresholds around this message's probability: the band is what is tested here.
    monkeypatch.setattr(crisis_model, "THRESHOLD", p + 0.01)
    monkeypatch.setattr(crisis_model, "CONCERN_THRESHOLD", p - 0.01)
    # Nor may the intent model hand it to staff on its own: the band must be what does.
    monkeypatch.setattr(understanding, "_SAFETY_FLOOR", 1.01)
    found = understand(text)
    assert understand(text, crisis_screen=False).intent not in (
        Intent.CRISIS,
        Intent.CLINICAL_CONCERN,
    )
    assert found.intent is Intent.CLINICAL_CONCERN
    assert found.evidence[0].rule == f"model:crisis-screen:concern:p={round(p, 3):.2f}"
    monkeypatch.setattr(crisis_model, "THRESHOLD", p - 0.005)
    assert understand(text).intent is Intent.CRISIS
    monkeypatch.setattr(crisis_model, "THRESHOLD", p + 0.01)
    monkeypatch.setattr(crisis_model, "CONCERN_THRESHOLD", p + 0.005)
    assert understand(text).intent is understand(text, crisis_screen=False).intent


def test_long_messages_need_a_surer_model_and_get_no_concern_band(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = crisis_model.model()
    long = screen_text(
        "took all my pills tonight, goodbye. "
        + " ".join(["we went to the store and bought some bread."] * 6)
    )
    assert len(long.split()) > crisis_model.LONG_WORDS
    p = model.probability(long)
    # Between the short and the long crisis thresholds: a crisis only if it were short (its
    # sentences are not read alone here; see the next test).
    monkeypatch.setattr(crisis_model, "SENTENCE_THRESHOLD", 1.01)
    monkeypatch.setattr(crisis_model, "THRESHOLD", p - 0.01)
    monkeypatch.setattr(crisis_model, "LONG_THRESHOLD", p + 0.01)
    monkeypatch.setattr(crisis_model, "CONCERN_THRESHOLD", p - 0.02)
    assert model.check(long) is None  # and no concern band past LONG_WORDS
    monkeypatch.setattr(crisis_model, "LONG_THRESHOLD", p - 0.005)
    hit = model.check(long)
    assert hit is not None and hit.crisis


def test_a_long_message_is_also_read_sentence_by_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crisis buried in one sentence of a long email raises it, though the whole reads
    ordinary; a sentence of fewer than SENTENCE_WORDS words is not read alone."""
    model = crisis_model.model()
    buried = screen_text(
        " ".join(["we went to the store and bought some bread."] * 4)
        + " i keep thinking about ending my life tonight. "
        + " ".join(["the invoice should go to my new address please."] * 3)
    )
    assert len(buried.split()) > crisis_model.LONG_WORDS
    whole = model.probability(buried)
    worst = max(model.probability(s) for s in crisis_model._sentences(buried))
    assert worst > whole
    monkeypatch.setattr(crisis_model, "LONG_THRESHOLD", max(whole, worst) + 0.01)
    monkeypatch.setattr(crisis_model, "SENTENCE_THRESHOLD", worst + 0.001)
    assert model.check(buried) is None
    monkeypatch.setattr(crisis_model, "SENTENCE_THRESHOLD", worst - 0.001)
    hit = model.check(buried)
    assert hit is not None and hit.crisis and hit.probability == round(worst, 3)
    assert crisis_model._sentences("a b c d . e f ? g h i j k") == ["a b c d", "g h i j k"]


def test_shipped_model_leaves_ordinary_replies_and_look_alikes_alone() -> None:
    for text in (
        "see you thursday at 3!",
        "can we move my appointment to next week",
        "this traffic is killing me, 5 min late",
        "my phone died, just saw your text",
        "what's your late cancellation fee?",
        "me muero de hambre jaja, llego en 10",
    ):
        assert understand(text).intent is not Intent.CRISIS, text


@pytest.mark.parametrize(
    "text",
    [
        "The gig is a total suicide mission—six sets in one night—so I'm cancelling Saturday's "
        "session. I'll text when I'm human again",
        "me voy a morir de la vergüenza pero se me cruzaron dos citas el mismo día, ¿podemos "
        "mover la suya al lunes?",
    ],
)
def test_a_rules_only_crisis_the_model_reads_as_ordinary_goes_to_staff_as_a_concern(
    text: str,
) -> None:
    rules = understand(text, crisis_screen=False)
    assert rules.intent is Intent.CRISIS
    found = understand(text)
    assert found.intent is Intent.CLINICAL_CONCERN  # a person still reads it; no urgent page
    [veto] = [e for e in found.evidence if ":veto:p=" in e.rule]
    assert float(veto.rule.rsplit("=", 1)[1]) < crisis_model.VETO_THRESHOLD
    assert veto.matched == ""  # the model's evidence carries no patient words
    assert any(e.intent is Intent.CRISIS for e in found.evidence)  # staff see what fired


def test_the_veto_keeps_plain_crises() -> None:
    for text in ("I want to die", "I took all my pills", "he has a knife", "me quiero matar"):
        assert understand(text).intent is Intent.CRISIS, text


def test_it_lowers_no_crisis_of_the_labelled_set_and_is_off_with_the_screens() -> None:
    for _intent, text in _labelled():
        found = understand(text)
        rules = understand(text, crisis_screen=False)
        if rules.intent is Intent.CRISIS:
            assert found == rules, text
        for e in rules.evidence:
            assert not e.rule.startswith("model:crisis-screen"), text


def test_warming_up_trains_the_models_off_the_request_path() -> None:
    crisis_model.model.cache_clear()
    thread = understanding.warm_in_background(crisis_screen=True)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert crisis_model.model.cache_info().currsize == 1


def test_the_shipped_model_is_kept_on_disk_and_a_change_trains_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_CACHE_DIR", str(tmp_path))
    # A slice of the examples keeps each training short; the cache is what is under test.
    few = crisis_model.shipped_examples()[:400]
    monkeypatch.setattr(crisis_model, "shipped_examples", lambda: few)
    crisis_model.model.cache_clear()
    try:
        trained = crisis_model.model()
        [kept] = list(tmp_path.glob("crisis_model.json"))
        crisis_model.model.cache_clear()
        read_back = crisis_model.model()
        assert read_back is not trained
        assert read_back.weights == trained.weights and read_back.bias == trained.bias

        # Weights kept under another key (the package or the settings changed) are not used.
        stored = json.loads(kept.read_text(encoding="utf-8"))
        stored["key"] = "something-else"
        stored["value"]["bias"] = 123.0
        kept.write_text(json.dumps(stored), encoding="utf-8")
        crisis_model.model.cache_clear()
        assert crisis_model.model().bias == trained.bias
        assert json.loads(kept.read_text(encoding="utf-8"))["key"] != "something-else"
    finally:
        crisis_model.model.cache_clear()


def test_an_unwritable_model_cache_only_means_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("FRONTDESK_CACHE_DIR", str(blocker / "cache"))
    few = crisis_model.shipped_examples()[:400]
    monkeypatch.setattr(crisis_model, "shipped_examples", lambda: few)
    crisis_model.model.cache_clear()
    try:
        assert crisis_model.model().weights == CrisisModel.train(few).weights
    finally:
        crisis_model.model.cache_clear()


def _retired_builder() -> ModuleType:
    path = INTENTS.parent / "build_retired_training.py"
    spec = importlib.util.spec_from_file_location("build_retired_training", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_retired_blind_sets_are_shipped_as_built_and_no_measuring_set_is_trained_on() -> None:
    builder = _retired_builder()
    shipped = (Path(crisis_model.__file__).parent / "lexicons" / "retired.tsv").read_text(
        encoding="utf-8"
    )
    assert shipped == builder.render(builder.rows()), "run tests/eval/build_retired_training.py"
    trained = {e.text.strip() for e in crisis_model.shipped_examples()}
    measuring = [p for p in sorted(INTENTS.glob("blind*.tsv")) if p.name not in builder.RETIRED]
    for path in measuring:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                assert line.split("\t")[2].strip() not in trained, (path.name, line)
