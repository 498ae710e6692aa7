"""``openai_chat.jsonl``: the OpenAI fine-tuning chat format, one training example per exported row.

system = the version's prompt as the teacher received it; user = the pair exactly as the teacher saw it (the
teacher's own ``build_messages``, ``member_facts`` and ``job_facts``); assistant = the answer in the teacher's
output schema, with the approved label. Each line is ``{"messages": [system, user, assistant]}``.
"""

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from labeling.teacher.messages import build_messages, job_facts, member_facts

from .labels_jsonl import PROGRESS_EVERY


def example(row: dict, system_prompt: str) -> dict:
    # member_facts / job_facts read attributes: a namespace with the exported fields stands in for the model rows
    member = SimpleNamespace(external_id=row["member_id"], **row["member"])
    job = SimpleNamespace(external_id=row["job_id"], **row["job"])
    answer = {"label": row["label"], "rationale": row["rationale"], "cited_rules": row["cited_rules"]}
    messages = build_messages(system_prompt, member_facts(member), job_facts(job))
    messages.append({"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)})
    return {"messages": messages}


def write(source: Path, path: Path, *, system_prompt: str, on_progress: Callable[[int], None] = lambda n: None) -> int:
    n = 0
    with open(source, encoding="utf-8") as rows, open(path, "w", encoding="utf-8", newline="\n") as out:
        for n, line in enumerate(rows, start=1):  # noqa: B007 - n is the count after the loop
            out.write(json.dumps(example(json.loads(line), system_prompt), ensure_ascii=False) + "\n")
            if n % PROGRESS_EVERY == 0:
                on_progress(n)
    on_progress(n)
    return n
