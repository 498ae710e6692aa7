"""Benchmark: precision and recall of the claim grounding check (the ``facts_grounded`` trust check) on the
labelled set in tests/labeling/data/grounding_cases.jsonl, and its cost per rationale.

    .venv/bin/python bench/grounding.py [--repeat 20] [--show]

Prints case-level precision, recall and the false-positive rate on grounded rationales (targets: recall >= 0.9,
at most 5 % of grounded ones flagged), per kind of invented fact the recall, how often the invented claim itself
is named and the claim precision; then ms per rationale, cold (the pair's text normalised too, as for a pair's
first answer) and warm (the pair's text cached, as for its other K-1 samples). ``--show`` lists the missed and
the wrongly flagged cases. Needs no database.
"""

import argparse
import time

from _common import ROOT  # noqa: F401  (puts the project on sys.path, sets DJANGO_SETTINGS_MODULE)


def timed(cases, policy, repeat: int, *, warm: bool) -> float:
    from labeling.pipeline import claims

    elapsed = 0.0
    for _ in range(repeat):
        claims.extract.cache_clear()
        if not warm:
            claims.text_grounds.cache_clear()
        else:
            for case in cases:
                claims.pair_grounds(case["member"], case["job"])
        start = time.perf_counter()
        for case in cases:
            claims.ungrounded(case["rationale"], member=case["member"], job=case["job"], policy=policy)
        elapsed += time.perf_counter() - start
    return elapsed / (repeat * len(cases)) * 1000


def report(title: str, f: dict) -> None:
    print(f"\n{title}: {f['cases']} rationales ({f['grounded']} grounded, {f['hallucinated']} hallucinated); "
          f"domains {f['domains']}")  # fmt: skip
    print(f"precision {f['precision']:.3f}  recall {f['recall']:.3f}  false-positive rate on grounded "
          f"{f['false_positive_rate']:.3f}  invented claim named {f['named']:.3f}")  # fmt: skip
    print(f"{'kind':<14}{'cases':>6}{'recall':>9}{'named':>8}{'claim precision':>17}")
    for kind, k in f["kinds"].items():
        print(f"{kind:<14}{k['cases']:>6}{k['recall']:>9.3f}{k['named']:>8.3f}{k['claim_precision']:>17.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--show", action="store_true", help="list missed and wrongly flagged cases")
    args = parser.parse_args()
    import django

    django.setup()
    from tests.labeling.grounding_eval import check, demo_policy, figures, load_cases

    cases, policy = load_cases(), demo_policy()
    outcomes = check(cases, policy)
    print(f"{len(cases)} rationales over {len({c['member']['member_id'] for c in cases})} pairs")
    report("all", figures(outcomes))
    held_out = [o for o in outcomes if o.case["split"] == "held_out"]
    report("held out (written after the word lists were settled)", figures(held_out))
    cold, warm = timed(cases, policy, args.repeat, warm=False), timed(cases, policy, args.repeat, warm=True)
    print(f"ms per rationale: cold {cold:.3f} (pair text normalised too), warm {warm:.3f} (pair text cached)")
    if args.show:
        for o in outcomes:
            if o.case["grounded"] == o.flagged or (not o.case["grounded"] and not o.named):
                found = ", ".join(c.describe() for c in o.found) or "-"
                print(f"  {o.case['id']:<10} {o.case['kind']:<12} invented={o.case['invented']!r} found: {found}")
                print(f"             {o.case['rationale']}")


if __name__ == "__main__":
    main()
