"""The labeling app's pages, one module per area (imports, teachers, runs, reviews, gold, previews, agreement).

Each view parses the request, checks the role (``role_required``), calls one service or selector and renders;
``common`` holds the run lookup and the target-precision parameter they share. ``labeling/urls.py`` routes to them.
"""
