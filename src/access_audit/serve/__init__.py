"""`access-audit serve`: the review queue in the browser, on 127.0.0.1 behind a start token.

- ``guard.py``: who may use it (Host check, start token, session cookie, security headers);
- ``forms.py``: a posted form's origin and CSRF checks;
- ``app.py``: the application: the guard around each kind of page's routes;
- ``flags.py``: the queue, a flag's page and its review form;
- ``cases.py``: the case list, a case's page and its assign and review forms (``Workspace.cases``);
- ``server.py``: the socket and uvicorn.
"""
