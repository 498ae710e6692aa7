"""The labeling app's pages, one module per area (imports, teachers, runs, reviews, gold, previews, agreement).

Each view parses the request, checks the role (``role_required``), calls a service or selector and renders;
``labeling/urls.py`` routes to them.
"""
