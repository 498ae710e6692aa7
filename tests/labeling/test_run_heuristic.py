from labeling.models import Candidate, TeacherSample
from labeling.services import labeling_run_create


def test_heuristic_run_labels_every_pair_and_routes_it(pairs, published, make_config, process_run, engineer):
    config = make_config("baseline", provider="heuristic", model="heuristic", samples_per_pair=2)
    run = labeling_run_create(version=published, config=config, selection={"all": True}, user=engineer, chunk_size=3)
    assert (run.pairs_total, run.samples_total, run.chunks.count()) == (4, 8, 2)
    run = process_run(run)
    assert run.status == "succeeded"
    assert (run.samples_done, run.samples_failed, run.cost) == (8, 0, 0)
    by_pair = {(c.pair.member.external_id, c.pair.job.external_id): c for c in Candidate.objects.filter(run=run)}
    # m1 is a senior data engineer in Berlin with Python and SQL: the Berlin senior data job is the best band
    assert by_pair[("m1", "j1")].label == "strong_match"
    assert by_pair[("m2", "j2")].label == "strong_match"  # the nurse and the ICU job share both skills
    assert by_pair[("m1", "j2")].label == "no_match"
    strong = by_pair[("m1", "j1")]
    assert strong.label_distribution["strong_match"] == 0.8 and strong.vote_share == 1.0
    assert strong.routing == "auto_accepted" and strong.trust_ok
    rationale = TeacherSample.objects.filter(run=run, pair=strong.pair).first().rationale
    assert (
        rationale.startswith("Heuristic baseline (not an LLM)") and "2 of 2 required skills (Python, SQL)" in rationale
    )
