"""A small Flask app of the kind edgesession is put in front of.

It has no login of its own: it trusts the proxy's X-Session-User (and the
mapped User-Name and X-Forwarded-Email headers), and it keeps a Flask
session of its own once it has seen a user, the way Django's
PersistentRemoteUserMiddleware does: a request without the header keeps
the user the app's session remembers. That is why edgesession has to
expire the app's session cookie when its own session ends.

Run: python3 flaskapp.py <port>
"""

import sys

from flask import Flask, jsonify, request, session

app = Flask(__name__)
app.config.update(
    SECRET_KEY="edgesession-test-app-secret",
    SESSION_COOKIE_NAME="app_session",
)

# What the app answers on /healthz, so that a test knows it talks to this
# process and not to whatever else took the port.
MARKER = "edgesession-flask-test-app"


@app.before_request
def remote_user():
    user = request.headers.get("X-Session-User")
    if user and session.get("user") != user:
        session.clear()
        session["user"] = user


def who():
    return {
        "header_user": request.headers.get("X-Session-User"),
        "user_name": request.headers.get("User-Name"),
        "email": request.headers.get("X-Forwarded-Email"),
        "session_user": session.get("user"),
        "authorization": request.headers.get("Authorization"),
    }


@app.route("/healthz")
def healthz():
    return MARKER


@app.route("/")
def index():
    user = session.get("user")
    resp = app.make_response(f"<!doctype html><title>app</title><p>Hello, {user}.</p>")
    if user and not request.headers.get("X-Forwarded-Email"):
        # The app knows its users' emails and keeps them in the session,
        # as a Flask view writes to `session`.
        resp.headers["X-Session-Set-Email"] = f"{user}@example.test"
    return resp


@app.route("/api/me")
def me():
    # What a script or a sync client fetches.
    return jsonify(who())


@app.route("/public/whoami")
def public_whoami():
    # A page anyone may see; the app says whom it thinks it is talking to.
    return jsonify(who())


@app.route("/bye")
def bye():
    # The app's own sign-out link: it ends our session too.
    session.clear()
    resp = jsonify({"bye": True})
    resp.headers["X-Session-Logout"] = "true"
    return resp


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), debug=False, use_reloader=False)
