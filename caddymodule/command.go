package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/sessionstore"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "session",
		Usage: "list <user> | revoke <user> [<handle>] | revoke-all --yes | mfa reset <user>",
		Short: "Lists and revokes edgesession sessions of a running Caddy, resets second factors",
		Long: `
Lists and revokes the sessions that edgesession keeps in the server-side
stores (memory, bolt, redis) of a running Caddy, through its admin API
(the admin.api.session endpoints), as 'caddy reload' uses the API.

  caddy session list <user>              the user's sessions, oldest first
  caddy session revoke <user>            sign the user out everywhere
  caddy session revoke <user> <handle>   sign out one session (a handle
                                         from 'list')
  caddy session revoke-all --yes         sign everyone out
  caddy session mfa reset <user>         remove the user's second factors
                                         (TOTP, passkeys, recovery codes),
                                         for one who lost their device

<user> is the name as X-Session-User carries it: a local name (alice), or
an OIDC provider's user qualified by the provider (corp:alice) unless that
provider has 'names local'.

A revocation is in force at the next request on every Caddy instance that
shares the store (Redis). With the Redis store's cache (on by default),
another instance may still accept a revoked session for up to the cache's
max age (1s by default), should Redis's invalidation not reach it sooner.
Sessions are shown by handle, never by ID: nothing printed can be turned
into a cookie. Sessions of the cookie store are kept only in
the browser and cannot be listed or revoked.

The admin API's address comes from --address if given, else from the
config given with --config (and --adapter), else it is the default
(localhost:2019).
`,
		CobraFunc: func(cmd *cobra.Command) {
			list := &cobra.Command{
				Use:   "list <user> [--json]",
				Short: "Lists a user's sessions",
				Args:  cobra.ExactArgs(1),
				RunE:  caddycmd.WrapCommandFuncForCobra(cmdSessionList),
			}
			list.Flags().Bool("json", false, "Print the admin API's JSON answer")
			revoke := &cobra.Command{
				Use:   "revoke <user> [<handle>]",
				Short: "Revokes one of a user's sessions, or all of them",
				Args:  cobra.RangeArgs(1, 2),
				RunE:  caddycmd.WrapCommandFuncForCobra(cmdSessionRevoke),
			}
			revokeAll := &cobra.Command{
				Use:   "revoke-all --yes",
				Short: "Revokes every session of every user",
				Args:  cobra.NoArgs,
				RunE:  refuseWithoutYes(caddycmd.WrapCommandFuncForCobra(cmdSessionRevokeAll)),
			}
			revokeAll.Flags().Bool("yes", false, "Confirm: sign everyone out")
			mfaCmd := &cobra.Command{
				Use:   "mfa reset <user>",
				Short: "Second factors of local users",
			}
			mfaReset := &cobra.Command{
				Use:   "reset <user>",
				Short: "Removes every second factor of a user (TOTP, passkeys, recovery codes); their sessions stay",
				Args:  cobra.ExactArgs(1),
				RunE:  caddycmd.WrapCommandFuncForCobra(cmdSessionMFAReset),
			}
			mfaCmd.AddCommand(mfaReset)
			for _, c := range []*cobra.Command{list, revoke, revokeAll, mfaReset} {
				c.Flags().StringP("config", "c", "", "Configuration file to read the admin address from, if --address is not used")
				c.Flags().StringP("adapter", "a", "", "Name of config adapter to apply (when --config is used)")
				c.Flags().String("address", "", "The address of the admin API, if not the default or the config's")
			}
			for _, c := range []*cobra.Command{list, revoke, revokeAll, mfaCmd} {
				cmd.AddCommand(c)
			}
		},
	})
}

func cmdSessionList(fl caddycmd.Flags) (int, error) {
	if err := identity.ValidUserRef(fl.Arg(0)); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%q: %v: no session can have this name", fl.Arg(0), err)
	}
	body, err := sessionAPI(fl, http.MethodGet, sessionUserPath(fl.Arg(0)), nil)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		os.Stdout.Write(body)
		return caddy.ExitCodeSuccess, nil
	}
	var list AdminSessionList
	if err := json.Unmarshal(body, &list); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("reading the admin API's answer: %v", err)
	}
	printSessions(os.Stdout, list)
	return caddy.ExitCodeSuccess, nil
}

func cmdSessionRevoke(fl caddycmd.Flags) (int, error) {
	user, path := fl.Arg(0), sessionUserPath(fl.Arg(0))
	if err := identity.ValidUserRef(user); err != nil {
		// A name such as ".." would be a path that the admin API's mux,
		// or an HTTP client, cleans into another one.
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%q: %v: no session can have this name", user, err)
	}
	if fl.NArg() == 2 {
		h, err := sessionstore.ParseHandle(fl.Arg(1))
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("%q: %v; take one from 'caddy session list %s'", fl.Arg(1), err, user)
		}
		path += "/" + h.String()
	}
	body, err := sessionAPI(fl, http.MethodDelete, path, nil)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var out AdminRevoked
	if err := json.Unmarshal(body, &out); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("reading the admin API's answer: %v", err)
	}
	fmt.Printf("revoked %s of %s\n", plural(out.Revoked, "session"), user)
	return caddy.ExitCodeSuccess, nil
}

// errNotConfirmed is what revoke-all without --yes ends with.
var errNotConfirmed = errors.New("revoke-all signs every user out of every site; add --yes if that is what you want")

// refuseWithoutYes runs revoke-all only with --yes. Without, it says why
// on standard error as a plain message for the person at the terminal (not
// a log line, as Caddy's command wrapper would print it) and exits with 1.
func refuseWithoutYes(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if yes, _ := cmd.Flags().GetBool("yes"); !yes {
			fmt.Fprintf(cmd.ErrOrStderr(), "caddy session %v\n", errNotConfirmed)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			return errNotConfirmed
		}
		return run(cmd, args)
	}
}

func cmdSessionRevokeAll(fl caddycmd.Flags) (int, error) {
	body, err := sessionAPI(fl, http.MethodPost, adminSessionPath+adminRevokeAll, strings.NewReader(adminRevokeAllBody))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var out AdminRevoked
	if err := json.Unmarshal(body, &out); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("reading the admin API's answer: %v", err)
	}
	fmt.Printf("revoked %s in %s\n", plural(out.Revoked, "session"), plural(out.Stores, "store"))
	return caddy.ExitCodeSuccess, nil
}

func cmdSessionMFAReset(fl caddycmd.Flags) (int, error) {
	user := fl.Arg(0)
	if err := identity.ValidUserRef(user); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%q: %v: no user can have this name", user, err)
	}
	req, err := json.Marshal(map[string]string{"user": user})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	body, err := sessionAPI(fl, http.MethodPost, adminSessionPath+adminMFAReset, bytes.NewReader(req))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	var out AdminMFAReset
	if err := json.Unmarshal(body, &out); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("reading the admin API's answer: %v", err)
	}
	fmt.Println(mfaResetMessage(out))
	return caddy.ExitCodeSuccess, nil
}

// mfaResetMessage says what a reset did, for the person at the terminal.
func mfaResetMessage(out AdminMFAReset) string {
	switch {
	case out.Stores == 0:
		return "this Caddy has no server-side session store (memory, bolt, redis): no second factors to reset"
	case out.Reset == 0:
		return fmt.Sprintf("%s had no second factor enrolled: nothing to reset", printable(out.User))
	}
	return fmt.Sprintf("reset the second factors of %s in %s", printable(out.User), plural(out.Reset, "store"))
}

// sessionUserPath is the admin API path of user's sessions.
func sessionUserPath(user string) string {
	return adminSessionPath + "users/" + url.PathEscape(user)
}

// sessionAPI sends one request to the admin API, found as 'caddy stop'
// finds it, and returns the answer's body.
func sessionAPI(fl caddycmd.Flags, method, path string, body io.Reader) ([]byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return nil, fmt.Errorf("couldn't determine admin API address: %v", err)
	}
	var hdr http.Header
	if body != nil {
		hdr = http.Header{"Content-Type": {"application/json"}}
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, path, hdr, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// printSessions writes a user's sessions as a table.
func printSessions(w io.Writer, list AdminSessionList) {
	if list.Stores == 0 {
		fmt.Fprintln(w, "this Caddy has no server-side session store (memory, bolt, redis): nothing to list")
		return
	}
	if len(list.Sessions) == 0 {
		fmt.Fprintf(w, "%s has no live sessions\n", printable(list.User))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HANDLE\tSITE\tSOURCE\tCREATED\tLAST SEEN\tCLIENT IP\tUSER AGENT")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return printable(s)
	}
	when := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	for _, s := range list.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Handle, dash(s.Site), dash(s.Source), when(s.Created), when(s.LastSeen), dash(s.ClientIP), dash(s.UserAgent))
	}
	tw.Flush()
	fmt.Fprintf(w, "%s: %s\n", printable(list.User), plural(len(list.Sessions), "session"))
}

// printable is a field a client may have written (its User-Agent, a
// name) as a terminal may show it: as it is when every character is a
// graphic one, else quoted with the others escaped. A C1 control (U+009B
// is CSI to many terminals), a bidi override or a zero-width space never
// reaches the admin's terminal as itself, and a field stays on one line.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) }) {
		return strconv.QuoteToGraphic(s)
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
