"""The Flask/Werkzeug reader of tests/difftest_test.go.

Every view that runs says so in its response: X-Route (which route ran),
X-Route-Method (the method the view ran as), X-Route-Path (the path the
app routed on, percent-encoded) and X-Route-User (the X-Session-User it
got). The app is as Flask's documentation writes one: `<int:id>`
converters (Werkzeug's `\\d+`, which takes any Unicode digit, and int(),
which reads it), `methods` lists, and the X-HTTP-Method-Override
middleware of the "Adding HTTP Method Overrides" pattern.

Run: python3 flask_routes.py <port>
"""

import sys
from urllib.parse import quote

from flask import Flask, request


class HTTPMethodOverrideMiddleware:
    # As in Flask's documentation (patterns/methodoverrides).
    allowed_methods = frozenset(["GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"])
    bodyless_methods = frozenset(["GET", "HEAD", "OPTIONS", "DELETE"])

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        method = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if method in self.allowed_methods:
            environ["REQUEST_METHOD"] = method
        if method in self.bodyless_methods:
            environ["CONTENT_LENGTH"] = "0"
        return self.app(environ, start_response)


app = Flask(__name__)
app.wsgi_app = HTTPMethodOverrideMiddleware(app.wsgi_app)


def ran(route):
    resp = app.make_response(f"flask ran {route}\n")
    resp.headers["X-Route"] = route
    resp.headers["X-Route-Method"] = request.method
    resp.headers["X-Route-Path"] = quote(request.path, safe="/")
    resp.headers["X-Route-User"] = request.headers.get("X-Session-User", "")
    return resp


@app.route("/healthz")
def healthz():
    return "edgesession-difftest-flask"


@app.route("/admin/keys", methods=["GET", "POST"])
def admin_keys():
    return ran("admin")


@app.route("/billing/<int:id>", methods=["GET", "POST", "PUT", "DELETE"])
def billing(id):
    return ran("billing")


@app.route("/reports/<int:id>")
def report(id):
    return ran("reports")


@app.route("/read/<name>")
def read(name):
    return ran("read")


@app.route("/public/<name>")
def public(name):
    return ran("public")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), debug=False, use_reloader=False, threaded=True)
