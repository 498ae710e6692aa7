"""The heuristic provider: a deterministic, rule-based baseline. It is NOT an LLM and never presents as one.

Score = skill overlap × (0.6 + 0.2 × seniority fit + 0.2 × location fit), where skill overlap is the share of
the job's required skills found in the member's skills (case-insensitive; 1 when the job lists none), seniority
fit is 1 within one level, 0.5 two levels apart or unknown, else 0, and location fit is 1 for the same location
or a remote job, else 0. Skills gate the rest: without any required skill, seniority and location cannot help.
The policy's labels are taken as ordered best to worst (e.g. strong_match, partial_match, no_match); the score is
cut into that many equal bands, best band first. The rationale states the facts it used; no rule is cited, as
the heuristic does not read the policy text. Every sample of a pair is the same answer.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from ..models import Seniority
from .base import LabelSpace, TeacherAnswer, TeacherRequest

LEVELS = {value: index for index, value in enumerate(Seniority.values)}


def _skills(values) -> dict[str, str]:
    return {str(v).strip().lower(): str(v).strip() for v in values or [] if str(v).strip()}


def score_pair(member: dict, job: dict) -> tuple[float, list[str]]:
    have, need = _skills(member.get("skills")), _skills(job.get("required_skills"))
    matched = [need[key] for key in need if key in have]
    overlap = len(matched) / len(need) if need else 1.0
    facts = [f"{len(matched)} of {len(need)} required skills" + (f" ({', '.join(matched)})" if matched else "")]
    seniority = 0.5
    m_level, j_level = LEVELS.get(member.get("seniority") or ""), LEVELS.get(job.get("seniority") or "")
    if m_level is not None and j_level is not None:
        gap = abs(m_level - j_level)
        seniority = 1.0 if gap <= 1 else 0.5 if gap == 2 else 0.0
        facts.append(f"seniority {member['seniority']} for a {job['seniority']} role")
    m_loc, j_loc = (member.get("location") or "").strip().lower(), (job.get("location") or "").strip().lower()
    location = 1.0 if (j_loc in {"remote", "anywhere"} or (m_loc and m_loc == j_loc)) else 0.0
    if j_loc:
        facts.append(f"location {member.get('location') or 'unknown'} for a job in {job['location']}")
    return overlap * (0.6 + 0.2 * seniority + 0.2 * location), facts


class HeuristicProvider:
    def __init__(self, *, snapshot: dict, space: LabelSpace, n_supported: bool | None = None):
        self.space = space

    def answer(self, request: TeacherRequest) -> TeacherAnswer:
        labels = self.space.labels
        score, facts = score_pair(request.facts["member"], request.facts["job"])
        band = min(len(labels) - 1, int((1 - score) * len(labels)))
        probs = {label: (0.8 if i == band else 0.2 / (len(labels) - 1)) for i, label in enumerate(labels)}
        return TeacherAnswer(
            key=request.key,
            label=labels[band],
            rationale=f"Heuristic baseline (not an LLM): score {score:.2f}; " + "; ".join(facts) + ".",
            label_probs=probs if len(labels) > 1 else {labels[0]: 1.0},
            raw="",
        )

    def answer_stream(
        self, requests: Iterable[TeacherRequest], *, should_stop: Callable[[], bool] = lambda: False
    ) -> Iterator[TeacherAnswer]:
        for request in requests:
            if should_stop():
                return
            answer = self.answer(request)
            for key in request.answer_keys:  # every sample of a pair is the same answer
                yield replace(answer, key=key)
