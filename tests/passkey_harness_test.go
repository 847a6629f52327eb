package tests

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// passkeySite is a site reached by name (a WebAuthn relying party ID is a
// host name, never an IP address): localhost, and evil.localhost for a
// phishing origin that reaches the same Caddy. Chromium resolves both to
// the loopback and treats them as secure contexts.
const passkeySite = `
http://localhost:[[.SitePort]], http://evil.localhost:[[.SitePort]], http://127.0.0.1:[[.SitePort]] {
	session {
		store [[.Extra.store]]
		[[if .Extra.alice]]user alice [[.Extra.alice]][[end]]
		user bob [[.Extra.bob]]
		mfa [[.Extra.required]] {
			[[if .Extra.strict]]rp_id localhost
			origins http://localhost:[[.SitePort]][[end]]
		}
	}
	reverse_proxy [[.Upstream]]
}
`

// startPasskeySite starts Caddy with passkeySite: strict configures the
// relying party ID and origin (localhost, not evil.localhost) rather than
// taking the request's; it returns the site's base URL by name.
func startPasskeySite(t *testing.T, up *Upstream, strict bool, opts ...Option) (*Caddy, string) {
	t.Helper()
	c := StartCaddy(t, up.Addr, passkeySite, append([]Option{WithExtra("alice", aliceHash), WithExtra("bob", bobHash), WithExtra("strict", strict), WithExtra("required", ""), WithExtra("store", "memory")}, opts...)...)
	return c, fmt.Sprintf("http://localhost:%d", c.SitePort)
}

// addAuthenticator gives the browser a virtual platform authenticator
// that keeps discoverable credentials and verifies its user (a device
// with a screen lock), answering at once.
func addAuthenticator(b *browser) cdpwebauthn.AuthenticatorID {
	b.t.Helper()
	_, err := chromedp.Call(b.ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{})
	b.must("enabling WebAuthn", err)
	res, err := chromedp.Call(b.ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
		Ctap2version:                cdpwebauthn.Ctap2versionCtap21,
		Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
		HasResidentKey:              true,
		HasUserVerification:         true,
		IsUserVerified:              true,
		AutomaticPresenceSimulation: true,
	}})
	b.must("adding a virtual authenticator", err)
	return res.AuthenticatorID
}

// addCredential is WebAuthn.addCredential without the CMTG fields, which
// cdproto always sends and Chromium's virtual authenticator refuses.
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: cdpwebauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID cdpwebauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      *credentialCopy             `json:"credential"`
}

type credentialCopy struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
}

// credentials are what the virtual authenticator holds.
func credentials(b *browser, id cdpwebauthn.AuthenticatorID) []*cdpwebauthn.Credential {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: id})
	b.must("reading the authenticator's credentials", err)
	return res.Credentials
}

// passkeyJS are functions the tests evaluate in the page (DevTools is not
// bound by the page's CSP): a ceremony of their own, to capture what a
// browser sends and send it again, elsewhere or changed.
const passkeyJS = `
const b64 = s => { s = s.replace(/-/g, "+").replace(/_/g, "/"); while (s.length % 4) s += "="; return Uint8Array.from(atob(s), c => c.charCodeAt(0)).buffer; };
const u64 = buf => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const assertion = async (options) => {
	const pk = options.publicKey;
	pk.challenge = b64(pk.challenge);
	pk.allowCredentials = (pk.allowCredentials || []).map(d => Object.assign({}, d, {id: b64(d.id)}));
	const c = await navigator.credentials.get({publicKey: pk});
	const r = c.response;
	return {id: c.id, rawId: u64(c.rawId), type: c.type, clientExtensionResults: {},
		response: {clientDataJSON: u64(r.clientDataJSON), authenticatorData: u64(r.authenticatorData), signature: u64(r.signature), userHandle: r.userHandle ? u64(r.userHandle) : undefined}};
};
const options = async (url) => { const r = await fetch(url, {headers: {Accept: "application/json"}}); if (!r.ok) throw new Error(r.status + " " + await r.text()); return r.json(); };
const post = async (url, body) => { const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json", Accept: "application/json"}, body: JSON.stringify(body)}); return r.status + " " + await r.text(); };
`

// evalJS runs body (an async function's body, after passkeyJS) in the
// page and returns what it returns (a string).
func (b *browser) evalJS(body string) string {
	b.t.Helper()
	return b.eval("(async () => {" + passkeyJS + body + "})()")
}

// passkeyPost posts body as JSON to path with the given cookies and more
// headers (as "Name: value").
func passkeyPost(c *Client, path string, body any, headers ...string) *Response {
	c.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.Post(path, "application/json", string(raw), append([]string{"Accept: application/json"}, headers...)...)
}

// cookieHeader is a Cookie header of the named cookies among cs.
func cookieHeader(cs []*http.Cookie) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return "Cookie: " + strings.Join(parts, "; ")
}

// forgeAssertion signs an assertion as an authenticator holding cred
// would, but for any origin and counter: what a browser on origin would
// send for challenge (base64url), with the user verified.
func forgeAssertion(t testing.TB, cred *cdpwebauthn.Credential, challenge, origin, rpID string, counter uint32) map[string]any {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(cred.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(rpID))
	authData := append(rpHash[:], 0x01|0x04) // user present, user verified
	authData = binary.BigEndian.AppendUint32(authData, counter)
	clientData, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": challenge, "origin": origin, "crossOrigin": false})
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(slices.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, key.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]any{
		"id": enc(cred.CredentialID), "rawId": enc(cred.CredentialID), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": enc(clientData), "authenticatorData": enc(authData), "signature": enc(sig), "userHandle": enc(cred.UserHandle)},
	}
}
