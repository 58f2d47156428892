"""`access-audit serve`: the review queue in the browser, on 127.0.0.1 behind a start token.

- ``guard.py``: who may use it (Host check, start token, session cookie, security headers);
- ``forms.py``: a posted form's origin and CSRF checks;
- ``app.py``: the application: the guard around each kind of page's routes;
- ``flags.py``: the queue, a flag's page and its review form (a case page would be a sibling
  module with its own ``routes(desk)``, added in ``app.create_app``);
- ``server.py``: the socket and uvicorn.
"""
