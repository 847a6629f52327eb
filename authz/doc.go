// Package authz owns the request as the upstream will read it, and the
// judging of it: the readings of a request (every path and method that
// common upstreams may act on), whether `public` matches every reading,
// and the rules' verdict on a user's request in all its readings.
//
// It must not know sessions, cookies, stores, identity sources or Caddy's
// Handler: the caller passes the user's name and groups (Groups) and the
// configuration, provisioned (Rules, Config, the public matchers), and
// answers the request itself. Caddy appears only as what requests are
// judged by, its request matchers (caddyhttp.MatcherSets). Authorization
// keeps no state: it is a function of the request and the user.
//
// # Readings
//
// Caddy's matchers see one path and one method; the upstream may act on
// another. Werkzeug, Django, Symfony and Laravel upper-case the method,
// Go's ServeMux serves HEAD with its GET routes, and frameworks honour
// X-HTTP-Method-Override and its kin. Tomcat cuts ";params" off a
// segment, Express and Rails ignore a trailing slash, ASP.NET compares
// paths case-insensitively with Unicode case mapping ("/admın" is
// "/ADMIN"), Werkzeug's <int:> takes any Unicode digit, and a PHP front
// controller runs the script "/index.php" of "/index.php/admin/users"
// and routes on its PATH_INFO "/admin/users". So `public` and the rules
// judge the request in every reading that common upstreams make of it
// (the session matcher judges only the session: see
// caddymodule.MatchSession):
//
//   - A request is public only if every route reading (below) with every
//     method reading is public.
//   - A rule judges every path reading (route readings and their spelling
//     variants) with every method reading; the user is let in only if no
//     reading is denied. Readings can only add denials.
//   - Where the readings cannot be enumerated (a path that is not plain,
//     see PlainPath; a path that is not UTF-8; non-ASCII that folds into
//     dot segments, '\' or percent-encoding; too many readings), the
//     request is refused: it is never public, and where rules apply it
//     is answered 400 unless every rule lets the user in.
//
// Route readings of a path p, each one a route some upstream executes:
//
//  1. p itself, as Caddy decoded it (its raw form goes to the matchers
//     too);
//  2. p with ";params" cut off each segment and runs of '/' merged
//     (resourcePath);
//  3. if p has non-ASCII: the Unicode readings of 2 (unicodeReadings):
//     NFKC, case folding (full folding as cases.Fold, and simple upper-
//     then lower-casing as .NET's ToUpperInvariant), every Unicode
//     decimal digit as its ASCII digit, and their combinations;
//  4. for each of the above with a script split marker (split_path,
//     ".php" by default; compared without regard to ASCII case, as
//     php_fastcgi does) followed by more path: the script (up to and
//     including the marker) and its PATH_INFO (the rest), for each
//     place the marker occurs;
//  5. each of the above in ASCII lower case;
//  6. if a reading above routes nowhere (all '/', or a script with no
//     PATH_INFO) and the raw query starts with '/' or "%2F": the query
//     up to '?' and up to '&', percent-decoded, and its readings 1-5
//     (CodeIgniter 3 routes "/index.php?/admin/keys"; readQueryRoute).
//
// A path longer than maxReadPath that is not its only reading is refused,
// and the enumeration stops at the first refusal: no request costs more
// than maxPathReadings paths of maxReadPath bytes.
//
// Spelling variants, judged by rules only: each route reading with its
// trailing slash toggled. Express, Rails and Flask's strict_slashes=False
// serve "/admin" with the route "/admin/", so `allow ... { path /admin/* }`
// must judge "/admin" too. `public` does not take them: "/app.css/" is no
// more a stylesheet than "/app.css" is a directory, and a `path *.css`
// or `path /docs/*` matcher would stop matching its own requests.
//
// Method readings of a method m: m itself; m in ASCII upper case; GET for
// HEAD; POST for a GET not spelled "GET" (Caddy's php_fastcgi runs
// "get" as POST, found by the differential test); and every value
// (comma-separated, trimmed, upper-cased; GET for HEAD) of every
// method-override header (X-HTTP-Method-Override, X-HTTP-Method,
// X-Method-Override, compared without regard to case
// and with '_' and '.' read as '-', as CGI, WSGI and PHP read header
// names) and of every "_method" query parameter (as PHP names it:
// " method" and ".method" are "_method" too). They are judged, not
// removed, so apps whose clients need them keep working. A "_method"
// field in the body cannot be judged: the body is not read.
//
// The common request (plain lower-case ASCII path without a split
// marker, ";" or "//", an upper-case method other than HEAD, no override
// header or "_method" parameter) costs no allocation to read and to judge
// for `public`; the rules add one, the path with a trailing slash (and
// Caddy's path matchers allocate to clean that).
//
// # Rules
//
// Rules are judged in order: the first rule whose matchers match a
// reading decides it; a user the rule names goes on, anyone else is
// denied. A request is forbidden if any of its readings is (see
// Rules.Judge).
package authz
