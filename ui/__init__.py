"""Magpie's Qt widgets, item models, delegates and the thumbnail loader.

Nothing here knows about libraries, models or jobs: widgets display what they are given and
emit signals; `app/` decides what happens. Never import `app` from here.
"""
