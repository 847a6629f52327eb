package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/edgesession/edgesession/internal/text"
	"golang.org/x/oauth2"
)

// maxUserInfoBytes bounds the userinfo answer read: a provider's fault or
// a compromised one cannot make a login hold megabytes.
const maxUserInfoBytes = 1 << 20

// userInfo asks the provider's userinfo endpoint about the user of tok and
// returns its claims as they are.
//
// Not go-oidc's Provider.UserInfo: it decodes email_verified into a bool
// (accepting "true" and "false" too) and fails the whole login on any
// other value (1, "True", null), which providers send; identify judges
// email_verified instead, as not verified unless it is true or "true".
// A plain JSON answer is trusted as go-oidc trusts it: it came over the
// provider's TLS, in answer to the access token. A signed one
// (application/jwt, for clients that registered
// userinfo_signed_response_alg, which this one never does) goes to
// go-oidc, which checks its signature.
func (p *Client) userInfo(ctx context.Context, d *discovery, tok *oauth2.Token) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.provider.UserInfoEndpoint(), nil)
	if err != nil {
		return nil, fmt.Errorf("userinfo request: %w", err)
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserInfoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	if len(body) > maxUserInfoBytes {
		return nil, errors.New("userinfo: answer over 1 MiB")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: %s: %s", resp.Status, text.Shorten(string(body), 200))
	}
	var claims map[string]any
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/jwt" {
		ui, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, err
		}
		err = ui.Claims(&claims)
		return claims, err
	}
	if err := json.Unmarshal(body, &claims); err != nil || claims == nil {
		return nil, fmt.Errorf("userinfo: not a JSON object: %s", text.Shorten(string(body), 200))
	}
	return claims, nil
}
