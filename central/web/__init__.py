"""The central server's dashboard: first-run setup, login, the fleet, pairing, admins, API tokens, live view.

Plain HTML (Jinja2) + one CSS + one vanilla JS file (no build step, no CDN), installed on the app with
:func:`central.web.routes.install`.
"""
