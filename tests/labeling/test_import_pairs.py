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
