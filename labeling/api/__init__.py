"""The labeling app's JSON API endpoints, one router per area (imports, runs, Label Studio, agreement).

Each module's ``router`` is mounted on the API root (``policyhub/api_root.py``) in ``policyhub/urls.py``. The
endpoints moved here from ``labeling/api.py`` and ``labeling/agreement_api.py`` keep their operationIds with an
explicit ``operation_id`` (``tests/policyhub/test_api_openapi.py`` pins them).
"""
