"""The Django reader of tests/difftest_test.go: a one-file project.

Every view that runs says so in its response, as the Flask app does
(X-Route, X-Route-Method, X-Route-Path, X-Route-User). Django upper-cases
the method it is given; its `<int:>` converter is ASCII `[0-9]+`; views
check methods with require_http_methods / require_safe (GET and HEAD);
a middleware lets a POST become PUT, PATCH or DELETE through
X-HTTP-Method-Override or a `_method` form field, the way Django projects
add method overrides for HTML forms.

Run: python3 django_routes.py <port>
"""

import sys
from urllib.parse import quote

from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="edgesession-difftest-django",
    MIDDLEWARE=[__name__ + ".MethodOverrideMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)

from django.core.management import execute_from_command_line  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_http_methods, require_safe  # noqa: E402


class MethodOverrideMiddleware:
    overridable = frozenset(["PUT", "PATCH", "DELETE"])

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST":
            method = request.META.get("HTTP_X_HTTP_METHOD_OVERRIDE") or request.POST.get("_method", "")
            if method.upper() in self.overridable:
                request.method = method.upper()
        return self.get_response(request)


def ran(request, route):
    resp = HttpResponse(f"django ran {route}\n", content_type="text/plain")
    resp["X-Route"] = route
    resp["X-Route-Method"] = request.method
    resp["X-Route-Path"] = quote(request.path_info, safe="/")
    resp["X-Route-User"] = request.headers.get("X-Session-User", "")
    return resp


def healthz(request):
    return HttpResponse("edgesession-difftest-django", content_type="text/plain")


@require_http_methods(["GET", "HEAD", "POST"])
def admin_keys(request):
    return ran(request, "admin")


@require_http_methods(["GET", "HEAD", "POST", "PUT", "DELETE"])
def billing(request, id):
    return ran(request, "billing")


@require_safe
def report(request, id):
    return ran(request, "reports")


@require_safe
def read(request, name):
    return ran(request, "read")


@require_safe
def public(request, name):
    return ran(request, "public")


urlpatterns = [
    path("healthz", healthz),
    path("admin/keys", admin_keys),
    path("billing/<int:id>", billing),
    path("reports/<int:id>", report),
    path("read/<str:name>", read),
    path("public/<str:name>", public),
]

if __name__ == "__main__":
    execute_from_command_line([sys.argv[0], "runserver", "--noreload", "127.0.0.1:" + sys.argv[1]])
