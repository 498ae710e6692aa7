"""The run engine: everything between "this run needs these answers" and "its candidates are routed".

Services drive it (online chunks in ``services.runs``, OpenAI batches in ``services.batches``, gold scores and
previews through the same runs); nothing else calls it. One mechanism for every kind of run:

* ``context``: what a run needs at every step (its frozen label space, request parameters, K, system prompt,
  cache keys);
* ``requests``: the (pair, sample) a set of candidates still needs, as teacher requests, and the cache's answers;
* ``chunk``: an online chunk on a worker (lease, watcher thread, slices prepared while the teacher works, flushes);
* ``answers``: storing answers, aggregating candidates, routing them and flagging other teachers' disagreement;
* ``routing``, ``trust``: the aggregation and review rules, and the checks on each answer;
* ``pricing``: what tokens cost; ``db``: the COPY-based bulk writes.
"""
