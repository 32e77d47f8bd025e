"""The camera's web page (login, live view, detections, stills, controls, status) served at ``/``.

Wire it into the app with :func:`pi_camera_service.web.routes.install`.
"""
