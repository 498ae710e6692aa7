from labeling.models import ImportBatch, Job, Member

from .conftest import JOBS_JSONL, MEMBERS_CSV


def test_members_csv_and_jobs_jsonl_are_imported_with_their_fields(do_import, owner):
    result = do_import("members", "members.csv", MEMBERS_CSV, user=owner)
    assert result.ok and result.batch.rows_created == 2
    m2 = Member.objects.get(external_id="m2")
    assert (m2.headline, m2.skills, m2.seniority) == ("Registered nurse", ["Triage", "ICU"], "mid")
    assert m2.summary == "Night shifts, ICU"
    assert result.batch.created_by == owner

    result = do_import("jobs", "jobs.jsonl", JOBS_JSONL)
    assert result.ok and result.batch.rows_created == 2
    assert Job.objects.get(external_id="j1").required_skills == ["Python", "SQL"]
    assert Job.objects.get(external_id="j2").required_skills == ["ICU", "Triage"]


def test_reimporting_the_same_file_is_a_noop_that_says_so(do_import):
    first = do_import("members", "members.csv", MEMBERS_CSV)
    again = do_import("members", "copy-of-members.csv", MEMBERS_CSV)
    assert again.already_imported and again.batch == first.batch
    assert "already imported" in again.summary()
    assert Member.objects.count() == 2
    assert ImportBatch.objects.count() == 1


def test_a_new_file_repeating_known_members_counts_them_as_present(do_import):
    do_import("members", "members.csv", MEMBERS_CSV)
    extended = MEMBERS_CSV + "m3,Welder,,junior,Lyon,\n"
    result = do_import("members", "more.csv", extended)
    assert result.ok
    assert (result.batch.rows_created, result.batch.rows_unchanged) == (1, 2)
    assert Member.objects.count() == 3


def test_a_known_member_with_different_data_is_refused_and_nothing_changes(do_import):
    do_import("members", "members.csv", MEMBERS_CSV)
    changed = MEMBERS_CSV.replace("Data engineer", "Data scientist") + "m3,Welder,,junior,Lyon,\n"
    result = do_import("members", "changed.csv", changed)
    assert not result.ok
    assert result.batch.errors == [
        {
            "line": 2,
            "field": "member_id",
            "reason": "'m1' already exists with different data; profiles are not overwritten",
        }
    ]
    assert Member.objects.get(external_id="m1").headline == "Data engineer"
    assert not Member.objects.filter(external_id="m3").exists()


def test_every_bad_row_is_reported_with_line_field_and_reason_and_nothing_is_imported(do_import):
    text = (
        "member_id,headline,skills,seniority,location,summary\n"
        "m1,Data engineer,Python,senior,Berlin,\n"  # fine
        ",No id,,,,\n"  # 3: missing id
        "m3,,Python,,,\n"  # 4: missing headline
        "m4,Cook,,chef,,\n"  # 5: bad seniority
        "m1,Again,,,,\n"  # 6: duplicate of line 2
        "m6,Too few\n"  # 7: wrong field count
        "m 7,Spaces,,,,\n"  # 8: id with a space
    )
    result = do_import("members", "bad.csv", text)
    assert not result.ok
    assert result.batch.error_count == 6
    assert [(e["line"], e["field"]) for e in result.batch.errors] == [
        (3, "member_id"),
        (4, "headline"),
        (5, "seniority"),
        (6, "member_id"),
        (7, "row"),
        (8, "member_id"),
    ]
    reasons = {e["line"]: e["reason"] for e in result.batch.errors}
    assert reasons[3] == "missing value"
    assert "'chef' is not one of" in reasons[5]
    assert reasons[6] == "duplicate of line 2"
    assert reasons[7] == "expected 6 fields, found 2"
    assert Member.objects.count() == 0
    assert "6 bad rows; nothing was imported" in result.summary()


def test_wrong_column_set_fails_the_file_at_the_header(do_import):
    result = do_import("members", "cols.csv", "member_id,title,skills\nm1,x,y\n")
    assert not result.ok
    assert {(e["line"], e["field"], e["reason"].split(";")[0]) for e in result.batch.errors} == {
        (1, "title", "unknown column"),
        (1, "headline", "required column is missing"),
    }
    assert Member.objects.count() == 0


def test_bad_utf8_is_reported_on_its_line_in_csv_and_jsonl(do_import):
    csv_bytes = b"member_id,headline,skills,seniority,location,summary\nm1,Caf\xe9 owner,,,,\nm2,Fine,,,,\n"
    result = do_import("members", "latin1.csv", csv_bytes)
    assert not result.ok
    assert result.batch.errors == [
        {"line": 2, "field": "headline", "reason": "bad encoding: the bytes are not valid UTF-8"}
    ]

    jsonl = (
        b'{"job_id": "j1", "title": "T", "description": "D"}\n'
        b'{"job_id": "j2", "title": "Caf\xe9", "description": "D"}\n'
    )
    result = do_import("jobs", "jobs.jsonl", jsonl)
    assert not result.ok
    assert [(e["line"], e["field"]) for e in result.batch.errors] == [(2, "row")]
    assert result.batch.errors[0]["reason"].startswith("bad encoding")
    assert Job.objects.count() == 0


def test_jsonl_rows_that_are_not_objects_or_have_unknown_keys_are_reported(do_import):
    text = (
        '{"job_id": "j1", "title": "T", "description": "D"}\n'
        "[1, 2]\n"
        '{"job_id": "j3", "title": "T", "description": "D", "salary": 10}\n'
        "{not json\n"
        '{"job_id": "j5", "title": "T"}\n'
    )
    result = do_import("jobs", "jobs.jsonl", text)
    assert [(e["line"], e["field"]) for e in result.batch.errors] == [
        (2, "row"),
        (3, "salary"),
        (4, "row"),
        (5, "description"),
    ]
    assert Job.objects.count() == 0


def test_an_unknown_file_extension_is_refused_with_a_clear_reason(do_import):
    result = do_import("members", "members.xlsx", MEMBERS_CSV)
    assert not result.ok
    assert "unknown format" in result.batch.errors[0]["reason"]


def test_text_with_quotes_commas_newlines_and_backslashes_is_stored_as_written(do_import):
    summary = 'Says "hi", then\nleaves; \\N is not null, nor is \\. or a \\ alone. Ünïcode too.'
    text = (
        "member_id,headline,skills,seniority,location,summary\n"
        f'q1,"Cook, ""chef""",,,,"{summary.replace(chr(34), chr(34) * 2)}"\n'
        "q2,Welder,,,,\n"  # empty optional text stays empty text
    )
    result = do_import("members", "quoted.csv", text)
    assert result.ok, result.batch.errors
    q1, q2 = Member.objects.get(external_id="q1"), Member.objects.get(external_id="q2")
    assert (q1.headline, q1.summary) == ('Cook, "chef"', summary)
    assert (q2.summary, q2.location, q2.skills) == ("", "", [])

    jsonl = (  # a carriage return alone, and with a line feed, in JSON escapes
        '{"member_id": "q3", "headline": "Cook", "summary": "one\\rtwo\\tthree"}\n'
        '{"member_id": "q4", "headline": "Cook", "summary": "a\\r\\nb"}\n'
    )
    assert do_import("members", "cr.jsonl", jsonl).ok
    assert Member.objects.get(external_id="q3").summary == "one\rtwo\tthree"
    assert Member.objects.get(external_id="q4").summary == "a\r\nb"
