"""``hallucination_bait`` variants: the job description gains requirements, in plausible prose, that the member
does not have (none of their words appears anywhere in the member's facts). A rationale must not claim the member
has them. The label may change (the job now asks for more), so no label is expected; the words the member lacks
are recorded for the check.
"""

import random

from . import Variant, append_text, copy_facts

#: (what the member lacks, a sentence of the job that asks for it)
REQUIREMENTS = [
    ("CISSP", "The successful candidate already holds a CISSP certification."),
    ("Mandarin", "Fluent Mandarin is essential, as you will work daily with our Shanghai office."),
    ("PMP", "A PMP certification is required for this position."),
    ("Kubernetes", "You have run Kubernetes clusters in production for at least five years."),
    ("security clearance", "Candidates must hold an active government security clearance."),
    ("forklift licence", "A valid forklift licence is needed from day one."),
    ("PhD", "A PhD in a quantitative field is expected."),
    ("Salesforce", "Hands-on Salesforce administration experience is a must."),
    ("SAP", "You bring several years of SAP S/4HANA implementation work."),
    ("CPA", "You are a licensed CPA in good standing."),
]


def _member_text(member: dict) -> str:
    values = [" ".join(v) if isinstance(v, list) else str(v or "") for v in member.values()]
    return " ".join(values).lower()


def generate(member: dict, job: dict, *, rng: random.Random, labels: list[str]) -> Variant:
    """Two requirements the member lacks (one when only one is left), added to the job description."""
    known = _member_text(member)
    lacking = [(term, sentence) for term, sentence in REQUIREMENTS if term.lower() not in known]
    if not lacking:
        raise ValueError("the member already has every requirement the bait could add")
    chosen = rng.sample(lacking, min(2, len(lacking)))
    variant_member, variant_job = copy_facts(member, job)
    variant_job["description"] = append_text(variant_job.get("description") or "", " ".join(s for _, s in chosen))
    return Variant(
        member=variant_member,
        job=variant_job,
        field="job.description",
        style="+".join(term for term, _ in chosen),
        member_lacks=[term for term, _ in chosen],
    )
