from labeling.models import Pair


def test_pairs_link_imported_members_and_jobs(members_and_jobs, do_import):
    result = do_import("pairs", "pairs.csv", "member_id,job_id\nm1,j1\nm2,j2\nm1,j2\n")
    assert result.ok and result.batch.rows_created == 3
    assert set(Pair.objects.values_list("member__external_id", "job__external_id")) == {
        ("m1", "j1"),
        ("m2", "j2"),
        ("m1", "j2"),
    }


def test_pairs_with_unknown_ids_or_duplicates_fail_the_whole_file(members_and_jobs, do_import):
    text = "member_id,job_id\nm1,j1\nm9,j1\nm1,j7\nm1,j1\nm2,\n"
    result = do_import("pairs", "pairs.csv", text)
    assert not result.ok
    assert result.batch.errors == [
        {"line": 3, "field": "member_id", "reason": "unknown member id 'm9'"},
        {"line": 4, "field": "job_id", "reason": "unknown job id 'j7'"},
        {"line": 5, "field": "member_id, job_id", "reason": "duplicate of line 2"},
        {"line": 6, "field": "job_id", "reason": "missing value"},
    ]
    assert Pair.objects.count() == 0


def test_pairs_already_present_are_not_duplicated(members_and_jobs, do_import):
    do_import("pairs", "a.csv", "member_id,job_id\nm1,j1\n")
    result = do_import("pairs", "b.jsonl", '{"member_id": "m1", "job_id": "j1"}\n{"member_id": "m2", "job_id": "j1"}\n')
    assert result.ok
    assert (result.batch.rows_created, result.batch.rows_unchanged) == (1, 1)
    assert Pair.objects.count() == 2


def _many_members_and_jobs(do_import, members: int, jobs: int) -> None:
    header = "member_id,headline,skills,seniority,location,summary\n"
    assert do_import("members", "many.csv", header + "".join(f"m{i},Engineer {i},,,,\n" for i in range(members))).ok
    rows = "".join(f'{{"job_id": "j{i}", "title": "Job {i}", "description": "D"}}\n' for i in range(jobs))
    assert do_import("jobs", "many.jsonl", rows).ok


def _pairs_csv(count: int, members: int = 200, jobs: int = 100) -> list[str]:
    return [f"m{i % members},j{(i // members + i * 7) % jobs}\n" for i in range(count)]


def test_a_large_pairs_file_imports_every_pair_with_its_member_and_job(do_import):
    _many_members_and_jobs(do_import, 200, 100)
    rows = _pairs_csv(20_000)
    result = do_import("pairs", "big.csv", "member_id,job_id\n" + "".join(rows))
    assert result.ok, result.batch.errors[:3]
    assert (result.batch.rows_seen, result.batch.rows_created, result.batch.rows_unchanged) == (20_000, 20_000, 0)
    stored = set(Pair.objects.values_list("member__external_id", "job__external_id"))
    assert stored == {tuple(row.strip().split(",")) for row in rows}
    assert set(Pair.objects.values_list("import_batch", flat=True)) == {result.batch.pk}


def test_bad_rows_deep_in_a_large_file_are_each_reported_and_nothing_is_written(do_import):
    _many_members_and_jobs(do_import, 200, 100)
    assert do_import("pairs", "first.csv", "member_id,job_id\n" + "".join(_pairs_csv(50))).ok
    before = list(Pair.objects.order_by("id").values_list("id", "member_id", "job_id", "import_batch_id"))
    rows = [row.encode() for row in _pairs_csv(20_000)]  # file line = index + 2 (after the header)
    rows[5_000] = b"m 1,j1\n"  # an id with a space
    rows[7_000] = b"m\xe91,j1\n"  # not UTF-8
    rows[9_000] = b"m1,j1\x00\n"  # NUL
    rows[11_000] = b"m999,j1\n"  # no such member
    rows[13_000] = b"m1,\n"  # missing job id
    rows[15_000] = rows[0]  # duplicate of line 2
    rows[17_000] = b"m1,j1,extra\n"  # a field too many
    result = do_import("pairs", "bad.csv", b"member_id,job_id\n" + b"".join(rows))
    assert not result.ok
    assert [(e["line"], e["field"], e["reason"]) for e in result.batch.errors] == [
        (5_002, "member_id", "must not contain spaces"),
        (7_002, "member_id", "bad encoding: the bytes are not valid UTF-8"),
        (9_002, "job_id", "contains a NUL character (0x00), which the database cannot store"),
        (11_002, "member_id", "unknown member id 'm999'"),
        (13_002, "job_id", "missing value"),
        (15_002, "member_id, job_id", "duplicate of line 2"),
        (17_002, "row", "expected 2 fields, found 3"),
    ]
    assert result.batch.error_count == 7 and result.batch.rows_created == 0
    assert list(Pair.objects.order_by("id").values_list("id", "member_id", "job_id", "import_batch_id")) == before


def test_unknown_ids_or_duplicates_alone_fail_the_file_though_the_insert_ran_first(do_import):
    """Without a bad row the pairs are inserted before any check; a row left out sends the file to the checks."""
    _many_members_and_jobs(do_import, 200, 100)
    assert do_import("pairs", "first.csv", "member_id,job_id\n" + "".join(_pairs_csv(50))).ok
    before = list(Pair.objects.order_by("id").values_list("id", "member_id", "job_id", "import_batch_id"))
    rows = _pairs_csv(20_000)
    rows[6_000], rows[12_000] = "m999,j1\n", rows[1]
    result = do_import("pairs", "bad.csv", "member_id,job_id\n" + "".join(rows))
    assert [(e["line"], e["field"], e["reason"]) for e in result.batch.errors] == [
        (6_002, "member_id", "unknown member id 'm999'"),
        (12_002, "member_id, job_id", "duplicate of line 3"),
    ]
    assert (result.batch.status, result.batch.rows_created) == ("failed", 0)
    assert list(Pair.objects.order_by("id").values_list("id", "member_id", "job_id", "import_batch_id")) == before


def test_the_count_of_bad_rows_is_exact_and_the_first_ones_are_listed(do_import, members_and_jobs, monkeypatch):
    from labeling.services import imports

    monkeypatch.setattr(imports, "ERROR_CAP", 3)
    rows = ["m1,j1\n", *(f"m{i},j1\n" for i in range(10, 20)), "m1,j1\n", "m 2,j1\n"]  # 10 unknown, 1 dup, 1 bad
    result = do_import("pairs", "capped.csv", "member_id,job_id\n" + "".join(rows))
    assert result.batch.error_count == 12
    assert [(e["line"], e["field"]) for e in result.batch.errors] == [
        (3, "member_id"),
        (4, "member_id"),
        (5, "member_id"),
    ]
    assert "12 bad rows (the first 3 are listed); nothing was imported" in result.summary()
    assert Pair.objects.count() == 0


def test_ids_are_cleaned_alike_on_the_quick_and_the_careful_path(members_and_jobs, do_import):
    """Padded ids, quoted ids and non-ASCII rows take the per-value path; plain ones the quick one."""
    text = 'member_id,job_id\n m1 ,j1\n"m2","j1"\nm1,\tj2\n'
    result = do_import("pairs", "padded.csv", text)
    assert result.ok, result.batch.errors
    assert set(Pair.objects.values_list("member__external_id", "job__external_id")) == {
        ("m1", "j1"),
        ("m2", "j1"),
        ("m1", "j2"),
    }
    result = do_import("pairs", "tab.csv", "member_id,job_id\nm2,j\t2\nm2,j2\u00a0x\n")
    assert [(e["line"], e["field"], e["reason"]) for e in result.batch.errors] == [
        (2, "job_id", "must not contain spaces"),
        (3, "job_id", "must not contain spaces"),
    ]


def test_each_imports_pairs_are_found_by_their_batch_through_the_block_range_index(do_import):
    """Pairs are chosen by import for a run or a red-team set: the lookup stays indexed (a BRIN on PostgreSQL,
    whose page ranges hold several batches and are rechecked) and returns exactly that import's pairs."""
    from django.db import connection, transaction

    _many_members_and_jobs(do_import, 300, 100)
    rows = _pairs_csv(30_000, members=300)
    first = do_import("pairs", "first.csv", "member_id,job_id\n" + "".join(rows[:20_000]))
    second = do_import("pairs", "second.csv", "member_id,job_id\n" + "".join(rows[20_000:]))
    assert (first.batch.rows_created, second.batch.rows_created) == (20_000, 10_000)
    for batch, expected in ((first.batch, rows[:20_000]), (second.batch, rows[20_000:])):
        chosen = Pair.objects.filter(import_batch_id=batch.pk)
        assert set(chosen.values_list("member__external_id", "job__external_id")) == {
            tuple(row.strip().split(",")) for row in expected
        }
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would be read whole anyway
            plan = Pair.objects.filter(import_batch_id=second.batch.pk).explain()
        assert "Bitmap Index Scan on pair_import_batch_brin" in plan, plan
